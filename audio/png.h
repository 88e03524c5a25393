// Spectrogram pictures: (n_chunks, n_mels, frames) values in [0, 1] -> an 8-bit RGB PNG (libpng).
// Viridis colours (dark blue = quiet floor, yellow = loudest), low frequencies at the bottom, every
// mel band `row_scale` pixels tall, chunks side by side left to right with a thin light-grey
// separator. Written atomically (temporary file + rename); errors name the file.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace gnet {

// Encodes width x height RGB pixels (3 bytes each, row-major) as PNG bytes; an Error with
// libpng's reason on failure.
std::string encode_rgb_png(const uint8_t* rgb, uint32_t width, uint32_t height);

// The viridis colour of v (clamped to [0, 1]), interpolated between a table of control points.
std::array<uint8_t, 3> viridis(float v);

struct SpectrogramPngOptions {
    int row_scale = 2;        // pixel rows per mel band
    int separator_width = 2;  // pixel columns between chunks
};

void write_spectrogram_png(const std::string& path, const float* spec, int64_t n_chunks, int n_mels,
                           int frames, const SpectrogramPngOptions& opt = {});

}  // namespace gnet
