// CSV parsing and writing: quoting, line numbers, malformed input.
#include <doctest/doctest.h>

#include "kernels/error.h"
#include "train/csv.h"

using namespace gnet;

TEST_CASE("csv round trip with awkward fields") {
    std::vector<std::string> fields = {"rock/a b.mp3", "with,comma", "with \"quote\"",
                                       "multi\nline",  "ünïcödé",    ""};
    std::string text = "h1,h2,h3,h4,h5,h6\n" + csv_line(fields);
    auto recs = csv_parse(text, "t.csv");
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].line == 1);
    CHECK(recs[1].line == 2);
    CHECK(recs[1].fields == fields);
}

TEST_CASE("csv line numbers skip blank lines and count embedded newlines; CRLF and BOM") {
    auto recs = csv_parse(
        "\xEF\xBB\xBF"
        "a,b\r\n\r\n\"x\ny\",1\r\nlast,2",
        "t.csv");
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].fields[0] == "a");
    CHECK(recs[1].line == 3);
    CHECK(recs[1].fields[0] == "x\ny");
    CHECK(recs[2].line == 5);
    CHECK(recs[2].fields[1] == "2");
}

TEST_CASE("malformed csv names file and line") {
    CHECK_THROWS_WITH_AS(csv_parse("a,b\nc,\"open\n", "lab.csv"), doctest::Contains("lab.csv:2"),
                         Error);
    CHECK_THROWS_WITH_AS(csv_parse("a,b\nc,d\"e\n", "lab.csv"), doctest::Contains("lab.csv:2"),
                         Error);
    CHECK_THROWS_WITH_AS(csv_parse("\"a\"b,c\n", "lab.csv"), doctest::Contains("lab.csv:1"), Error);
    CHECK_THROWS_WITH_AS(csv_read_file("/nonexistent/x.csv"),
                         doctest::Contains("/nonexistent/x.csv"), Error);
}
