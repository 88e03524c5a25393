#include "train/labels.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "audio/audio_files.h"
#include "kernels/error.h"
#include "train/csv.h"

namespace fs = std::filesystem;

namespace gnet {

namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

std::string normalise_track(std::string p) {
    while (p.rfind("./", 0) == 0)
        p = p.substr(2);
    return fs::path(p).lexically_normal().generic_string();
}

void warn_genres_without_positives(LabelSet& set, const std::string& where) {
    std::vector<int64_t> counts = genre_counts(set);
    for (size_t g = 0; g < set.genres.size(); ++g)
        if (counts[g] == 0)
            set.warnings.push_back(where + ": genre '" + set.genres[g] +
                                   "' has no positive track (kept; its metrics will be n/a)");
}

// Collects warnings of one kind, printing at most kMaxWarningsPerKind of them.
class CappedWarnings {
  public:
    CappedWarnings(LabelSet& set, std::string more) : set_(set), more_(std::move(more)) {}
    ~CappedWarnings() {
        if (count_ > kMaxWarningsPerKind)
            set_.warnings.push_back("... and " + std::to_string(count_ - kMaxWarningsPerKind) +
                                    " more " + more_);
    }
    void add(const std::string& line) {
        if (++count_ <= kMaxWarningsPerKind) set_.warnings.push_back(line);
    }

  private:
    LabelSet& set_;
    std::string more_;
    size_t count_ = 0;
};

void sort_tracks(LabelSet& set) {
    std::sort(set.tracks.begin(), set.tracks.end(),
              [](const LabelledTrack& a, const LabelledTrack& b) { return a.path < b.path; });
}

}  // namespace

void check_genre_name(const std::string& name, const std::string& where) {
    auto printable = [](const std::string& s) {
        std::string out;
        for (unsigned char d : s)
            out += (d < 0x20 || d == 0x7f) ? std::string("?") : std::string(1, char(d));
        return out;
    };
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f)
            throw Error(printable(where) + ": genre name '" + printable(name) +
                        "' holds a control character (a line break or tab); rename it");
}

std::vector<int64_t> genre_counts(const LabelSet& set) {
    std::vector<int64_t> counts(set.genres.size(), 0);
    for (const LabelledTrack& t : set.tracks)
        for (size_t g = 0; g < counts.size(); ++g)
            counts[g] += t.labels[g];
    return counts;
}

LabelSet labels_from_csv(const std::string& csv_path, const std::string& audio_dir) {
    std::vector<CsvRecord> recs = csv_read_file(csv_path);
    if (recs.empty())
        throw Error(csv_path + ": empty labels file (expected a header 'track,<genre>,...')");
    const CsvRecord& header = recs[0];
    auto at = [&](int line) { return csv_path + ":" + std::to_string(line); };
    if (trim(header.fields[0]) != "track")
        throw Error(at(header.line) + ": the first column must be 'track', found '" +
                    header.fields[0] + "'");
    if (header.fields.size() < 2) throw Error(at(header.line) + ": no genre columns after 'track'");
    if (header.fields.size() - 1 > kMaxGenres)
        throw Error(at(header.line) + ": " + std::to_string(header.fields.size() - 1) +
                    " genre columns; gnet supports at most " + std::to_string(kMaxGenres));
    LabelSet set;
    std::set<std::string> seen_genres;
    for (size_t i = 1; i < header.fields.size(); ++i) {
        std::string g = trim(header.fields[i]);
        if (g.empty())
            throw Error(at(header.line) + ": genre column " + std::to_string(i + 1) +
                        " has no name");
        check_genre_name(g, at(header.line));
        if (!seen_genres.insert(g).second)
            throw Error(at(header.line) + ": genre '" + g + "' appears twice in the header");
        set.genres.push_back(g);
    }

    std::map<std::string, int> line_of_track;
    const size_t G = set.genres.size();
    {
        CappedWarnings missing(set, "rows whose file does not exist");
        for (size_t r = 1; r < recs.size(); ++r) {
            const CsvRecord& rec = recs[r];
            if (rec.fields.size() != G + 1)
                throw Error(at(rec.line) + ": " + std::to_string(rec.fields.size()) +
                            " cells where the header has " + std::to_string(G + 1));
            LabelledTrack t;
            t.path = normalise_track(trim(rec.fields[0]));
            t.line = rec.line;
            if (t.path.empty() || t.path == ".") throw Error(at(rec.line) + ": empty track path");
            if (fs::path(t.path).is_absolute() || t.path == ".." || t.path.rfind("../", 0) == 0)
                throw Error(at(rec.line) + ": track '" + t.path +
                            "' is outside the music folder (absolute or through ..); paths are "
                            "relative to " +
                            audio_dir);
            for (size_t g = 0; g < G; ++g) {
                std::string cell = trim(rec.fields[g + 1]);
                if (cell != "0" && cell != "1")
                    throw Error(at(rec.line) + ": cell '" + cell + "' for genre '" + set.genres[g] +
                                "' is not 0 or 1");
                t.labels.push_back(cell == "1" ? 1 : 0);
            }
            auto [it, inserted] = line_of_track.emplace(t.path, rec.line);
            if (!inserted)
                throw Error(at(rec.line) + ": track '" + t.path + "' already listed on line " +
                            std::to_string(it->second));
            std::error_code ec;
            if (!fs::exists(fs::path(audio_dir) / t.path, ec)) {
                missing.add(at(rec.line) + ": " + t.path + ": no such file under " + audio_dir +
                            "; row skipped");
                set.unused.push_back({t.path, at(rec.line) + ": no such file"});
                continue;
            }
            set.tracks.push_back(std::move(t));
        }
    }

    CappedWarnings unlisted(set, "audio files without a row in " + csv_path);
    for (const std::string& f : list_audio_files(audio_dir))
        if (!line_of_track.count(f)) {
            unlisted.add(audio_dir + "/" + f + ": no row in " + csv_path + "; file skipped");
            set.unused.push_back({f, "no row in " + csv_path});
        }

    warn_genres_without_positives(set, csv_path);
    sort_tracks(set);
    return set;
}

LabelSet labels_from_folders(const std::string& audio_dir) {
    LabelSet set;
    std::map<std::string, std::vector<std::string>> by_genre;
    {
        CappedWarnings outside(set, "audio files outside a genre folder");
        for (const std::string& f : list_files(audio_dir)) {
            std::error_code ec;
            const fs::path full = fs::path(audio_dir) / f;
            if (!is_audio_file(f)) {
                set.unused.push_back({f, "not an audio file (by its extension)"});
                continue;
            }
            if (fs::is_symlink(full, ec) && !fs::exists(full, ec)) {
                set.unused.push_back({f, "a broken symbolic link"});
                continue;
            }
            size_t slash = f.find('/');
            if (slash == std::string::npos) {
                outside.add(audio_dir + "/" + f +
                            ": not inside a genre folder; file skipped (or use --labels)");
                set.unused.push_back({f, "not inside a genre folder"});
                continue;
            }
            const std::string genre = f.substr(0, slash);
            check_genre_name(genre, audio_dir + "/" + genre);
            by_genre[genre].push_back(f);
        }
    }
    if (by_genre.empty())
        throw Error(audio_dir +
                    ": no audio files in genre sub-folders (expected e.g. rock/song.mp3) "
                    "and no --labels table given");
    if (by_genre.size() > kMaxGenres)
        throw Error(audio_dir + ": " + std::to_string(by_genre.size()) +
                    " genre folders; gnet supports at most " + std::to_string(kMaxGenres));
    for (const auto& [genre, _] : by_genre)
        set.genres.push_back(genre);
    for (size_t g = 0; g < set.genres.size(); ++g) {
        for (const std::string& f : by_genre[set.genres[g]]) {
            LabelledTrack t;
            t.path = f;
            t.labels.assign(set.genres.size(), 0);
            t.labels[g] = 1;
            set.tracks.push_back(std::move(t));
        }
    }
    sort_tracks(set);
    return set;
}

}  // namespace gnet
