// Genre labels of a music collection, from a multi-hot CSV table or from one sub-folder per genre.
//
// CSV: a header `track,<genre1>,<genre2>,...` then one row per track: its path relative to the
// audio folder and a 0/1 cell per genre. Header problems, a row with the wrong number of cells, a
// cell that is not 0 or 1 and a duplicate track are errors naming labels.csv:LINE. A row whose
// file does not exist, an audio file without a row and a genre with no positive are warnings
// (also naming the line where there is one): the row or file is left out, the genre is kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

struct LabelledTrack {
    std::string path;             // relative to the audio folder, '/'-separated
    std::vector<uint8_t> labels;  // one 0/1 per genre
    int line = 0;                 // line in the CSV (0 for the folder layout)
};

struct LabelSet {
    std::vector<std::string> genres;
    std::vector<LabelledTrack> tracks;  // sorted by path
    std::vector<std::string> warnings;  // one line each, ready to print
};

LabelSet labels_from_csv(const std::string& csv_path, const std::string& audio_dir);
LabelSet labels_from_folders(const std::string& audio_dir);

// Positives per genre.
std::vector<int64_t> genre_counts(const LabelSet& set);

}  // namespace gnet
