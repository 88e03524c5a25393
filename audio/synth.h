// Synthetic "music" for the demo and for tests: a few clearly artificial genres that differ in
// rhythm and timbre, so a small network can learn them in minutes on a CPU.
//
//   pulse  four-on-the-floor kick drum (decaying low sine sweep) with hi-hat noise ticks, 120 BPM
//   drone  slow sustained chords of detuned sawtooth-like partials, no percussion
//   chime  sparse bright bell tones (inharmonic partials, fast attack, long decay), random onsets
//   bass   a plucked low bass line (square-ish, 100 BPM eighth notes) with gentle noise floor
//
// A track may carry two genres: its signal is the sum of both generators. Every track is made from
// a seeded RNG (std::mt19937_64), so the same seed always gives the same audio.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

const std::vector<std::string>& synth_genres();  // {"pulse", "drone", "chime", "bass"}

// Mono audio in [-1, 1] at `sample_rate`, `seconds` long, mixing the generators named in `genres`.
std::vector<float> synth_track(const std::vector<std::string>& genres, double seconds,
                               int sample_rate, uint64_t seed);

struct DemoSetOptions {
    std::string out_dir;
    int tracks_per_genre = 10;
    int two_label_tracks = 8;  // extra tracks mixing two genres
    double seconds = 21.0;     // two 10 s chunks (the remainder is dropped by prepare)
    int sample_rate = 22050;
    uint64_t seed = 0;
};

// Writes OUT/<genre>_<k>.wav (and mixes as <g1>+<g2>_<k>.wav) and OUT/labels.csv (multi-hot);
// returns the number of tracks written.
int write_demo_set(const DemoSetOptions& opt);

}  // namespace gnet
