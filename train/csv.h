// CSV (RFC 4180): fields separated by commas, quoted with '"' when they hold a comma, a quote or a
// line break, quotes doubled inside quotes. Reading keeps the 1-based line number of every record
// so errors can name "labels.csv:17".
#pragma once

#include <string>
#include <vector>

namespace gnet {

struct CsvRecord {
    int line = 0;  // 1-based line where the record starts
    std::vector<std::string> fields;
};

// Parses a whole CSV text; `source` (the file name) only appears in error messages.
// Blank lines are skipped; a trailing '\r' (Windows line ends) and a UTF-8 BOM are tolerated.
std::vector<CsvRecord> csv_parse(const std::string& text, const std::string& source);
std::vector<CsvRecord> csv_read_file(const std::string& path);

// One field, quoted only when needed.
std::string csv_escape(const std::string& field);
// One record followed by '\n'.
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace gnet
