#include "train/csv.h"

#include "kernels/error.h"
#include "nn/atomic_file.h"

namespace gnet {

std::vector<CsvRecord> csv_parse(const std::string& text, const std::string& source) {
    std::vector<CsvRecord> out;
    size_t i = 0;
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
    int line = 1;
    while (i < text.size()) {
        CsvRecord rec;
        rec.line = line;
        std::string field;
        bool in_quotes = false, field_was_quoted = false, end_of_record = false;
        while (i < text.size() && !end_of_record) {
            char c = text[i];
            if (in_quotes) {
                if (c == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                    ++i;
                    continue;
                }
                if (c == '\n') ++line;
                field += c;
                ++i;
                continue;
            }
            if (c == '"') {
                if (!field.empty() || field_was_quoted)
                    throw Error(source + ":" + std::to_string(line) +
                                ": malformed CSV: quote inside an unquoted field");
                in_quotes = field_was_quoted = true;
                ++i;
            } else if (c == ',') {
                rec.fields.push_back(std::move(field));
                field.clear();
                field_was_quoted = false;
                ++i;
            } else if (c == '\n' || c == '\r') {
                if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
                ++i;
                ++line;
                end_of_record = true;
            } else {
                if (field_was_quoted)
                    throw Error(source + ":" + std::to_string(line) +
                                ": malformed CSV: text after a closing quote");
                field += c;
                ++i;
            }
        }
        if (in_quotes)
            throw Error(source + ":" + std::to_string(rec.line) +
                        ": malformed CSV: unterminated quoted field");
        rec.fields.push_back(std::move(field));
        bool blank = rec.fields.size() == 1 && rec.fields[0].empty() && !field_was_quoted;
        if (!blank) out.push_back(std::move(rec));
    }
    return out;
}

std::vector<CsvRecord> csv_read_file(const std::string& path) {
    return csv_parse(read_file(path), path);
}

std::string csv_escape(const std::string& field) {
    if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
    std::string out = "\"";
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i) out += ',';
        out += csv_escape(fields[i]);
    }
    return out + "\n";
}

}  // namespace gnet
