// Genre labels of a music collection, from a multi-hot CSV table or from one sub-folder per genre.
//
// CSV: a header `track,<genre1>,<genre2>,...` then one row per track: its path relative to the
// audio folder and a 0/1 cell per genre. Errors naming labels.csv:LINE: header problems, more than
// kMaxGenres genre columns, a genre name with a control character, a row with the wrong number of
// cells, a cell that is not 0 or 1, a duplicate track, a track path that is absolute or leaves the
// audio folder (`..`). Left out and reported (in `unused`, and as a warning line): a row whose
// file does not exist, an audio file without a row. A genre with no positive is a warning.
//
// Folders: the first folder level names the genre (a name with a control character is an error);
// audio files outside a genre folder and files that are not audio are left out and reported.
// Paths are lexical: a symbolic link keeps its own path and label.
//
// Warnings are capped at kMaxWarningsPerKind lines per kind plus one "... and N more" line, so a
// million bad rows print a screenful, not a million lines; `unused` keeps every entry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

constexpr size_t kMaxGenres = 4096;
constexpr size_t kMaxWarningsPerKind = 20;

struct LabelledTrack {
    std::string path;             // relative to the audio folder, '/'-separated
    std::vector<uint8_t> labels;  // one 0/1 per genre
    int line = 0;                 // line in the CSV (0 for the folder layout)
};

// A file (or CSV row) that was found but is not prepared, and why.
struct UnusedFile {
    std::string path;
    std::string reason;
};

struct LabelSet {
    std::vector<std::string> genres;
    std::vector<LabelledTrack> tracks;  // sorted by path
    std::vector<UnusedFile> unused;     // found but not used, every one
    std::vector<std::string> warnings;  // one line each, ready to print (capped)
};

LabelSet labels_from_csv(const std::string& csv_path, const std::string& audio_dir);
LabelSet labels_from_folders(const std::string& audio_dir);

// Positives per genre.
std::vector<int64_t> genre_counts(const LabelSet& set);

// An Error naming `where` when `name` holds a control character (it would split genres.txt
// lines and terminal output).
void check_genre_name(const std::string& name, const std::string& where);

}  // namespace gnet
