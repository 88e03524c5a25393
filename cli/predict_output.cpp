#include "cli/predict_output.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kernels/error.h"
#include "nn/json.h"
#include "train/csv.h"

namespace gnet::cli {

namespace {

std::string clock_time(double s) {
    long t = long(std::floor(s + 1e-9));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

// Probabilities at full float precision (the shortest decimal that reads back as the float).
OrderedJson genres_json(const std::vector<GenreScore>& scores) {
    OrderedJson a = OrderedJson::array();
    for (const GenreScore& s : scores)
        a.push_back(
            {{"genre", s.genre}, {"probability", s.probability}, {"predicted", s.predicted}});
    return a;
}

std::string fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// The shortest text that reads back as the same float.
std::string full_precision(float v) {
    char buf[32];
    for (int prec = 6; prec <= 9; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, double(v));
        if (std::strtof(buf, nullptr) == v) break;
    }
    return buf;
}

// The predicted genres in column order, ';'-separated.
std::string predicted_list(const std::vector<GenreScore>& scores,
                           const std::vector<std::string>& genres) {
    std::string s;
    for (const std::string& name : genres)
        for (const GenreScore& g : scores)
            if (g.genre == name && g.predicted) s += (s.empty() ? "" : ";") + g.genre;
    return s;
}

}  // namespace

OutputFormat parse_output_format(const std::string& text) {
    if (text == "table") return OutputFormat::Table;
    if (text == "json") return OutputFormat::Json;
    if (text == "csv") return OutputFormat::Csv;
    throw UsageError("unknown --format '" + text + "' (expected table, json or csv)");
}

PredictPrinter::PredictPrinter(std::ostream& out, OutputFormat format,
                               std::vector<std::string> genres, int top_k, bool segments)
    : out_(out), format_(format), genres_(std::move(genres)), top_k_(top_k), segments_(segments) {}

void PredictPrinter::begin() {
    if (format_ == OutputFormat::Json) out_ << "[";
    if (format_ == OutputFormat::Csv) {
        std::vector<std::string> h = {"file", "kind", "start_s", "end_s", "chunks", "predicted"};
        h.insert(h.end(), genres_.begin(), genres_.end());
        out_ << csv_line(h);
    }
}

void PredictPrinter::track(const TrackPrediction& t) {
    if (format_ == OutputFormat::Json) {
        OrderedJson o = {{"file", t.file},
                         {"duration_s", t.duration_s},
                         {"chunks", t.chunks},
                         {"strategy", aggregation_name(t.strategy)},
                         {"genres", genres_json(t.genres)}};
        if (t.mostly_padding)
            o["note"] = "shorter than half a chunk: mostly zero padding, no genre marked";
        if (segments_) {
            OrderedJson segs = OrderedJson::array();
            for (const SegmentPrediction& s : t.segments)
                segs.push_back({{"start_s", s.start_s},
                                {"end_s", s.end_s},
                                {"genres", genres_json(s.genres)}});
            o["segments"] = std::move(segs);
        }
        out_ << (count_ ? ",\n  " : "\n  ") << json_dump(o);
    } else if (format_ == OutputFormat::Csv) {
        auto row = [&](const std::string& kind, double a, double b, int chunks,
                       const std::vector<GenreScore>& scores) {
            std::vector<std::string> r = {t.file,
                                          kind,
                                          fixed(a, 2),
                                          fixed(b, 2),
                                          std::to_string(chunks),
                                          predicted_list(scores, genres_)};
            for (const std::string& g : genres_)
                for (const GenreScore& s : scores)
                    if (s.genre == g) r.push_back(full_precision(s.probability));
            out_ << csv_line(r);
        };
        row("track", 0.0, t.duration_s, t.chunks, t.genres);
        if (segments_)
            for (const SegmentPrediction& s : t.segments)
                row("segment", s.start_s, s.end_s, 1, s.genres);
    } else {
        char head[64];
        std::snprintf(head, sizeof head, "  (%d chunk%s, %s, %s)", t.chunks,
                      t.chunks == 1 ? "" : "s", clock_time(t.duration_s).c_str(),
                      aggregation_name(t.strategy));
        out_ << (count_ ? "\n" : "") << t.file << head << "\n";
        if (t.mostly_padding) out_ << "  (mostly zero padding: scores shown, no genre marked)\n";
        size_t w = 5;
        for (const std::string& g : genres_)
            w = std::max(w, g.size());
        int k = std::min<int>(top_k_, int(t.genres.size()));
        for (int i = 0; i < k; ++i) {
            const GenreScore& s = t.genres[size_t(i)];
            char line[256];
            std::snprintf(line, sizeof line, "  %-*s %6.3f%s\n", int(w), s.genre.c_str(),
                          s.probability, s.predicted ? " *" : "");
            out_ << line;
        }
        if (segments_) {
            for (const SegmentPrediction& s : t.segments) {
                out_ << "    " << clock_time(s.start_s) << "-" << clock_time(s.end_s) << " ";
                for (int i = 0; i < k; ++i)
                    out_ << " " << s.genres[size_t(i)].genre << " "
                         << fixed(s.genres[size_t(i)].probability, 2)
                         << (s.genres[size_t(i)].predicted ? "*" : "");
                out_ << "\n";
            }
        }
    }
    ++count_;
    out_.flush();
}

void PredictPrinter::error(const std::string& file, const std::string& reason) {
    if (format_ != OutputFormat::Json) return;
    OrderedJson o = {{"file", file}, {"error", reason}};
    out_ << (count_ ? ",\n  " : "\n  ") << json_dump(o);
    ++count_;
    out_.flush();
}

void PredictPrinter::end() {
    if (format_ == OutputFormat::Json) out_ << (count_ ? "\n]\n" : "]\n");
    if (format_ == OutputFormat::Table && count_ > 0)
        out_ << "\n* = at or above the genre's decision threshold\n";
    out_.flush();
}

}  // namespace gnet::cli
