// Pictures (Cairo, Debian's libcairo2-dev): the spectrogram figure of `gnet spectrogram --png`,
// the PNG encoder shared with train/curves.cpp, and the viridis colour map.
//
// The spectrogram figure: viridis colours (dark blue = the quiet floor, yellow = the loudest),
// low frequencies at the bottom, a frequency axis in Hz (at the Slaney mel positions of the
// bands), a time axis in m:ss, a title naming the file and a colour bar. The chunks are laid out
// left to right in rows (at most 4 chunks = 40 s per row at one pixel per frame); a long file
// keeps at most 12 rows, each row then compressing time (frames averaged per pixel), so a
// 30-minute file is a readable ~1900 x 3600 picture, not a 78,000-pixel strip. Written
// atomically; errors name the file.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace gnet {

// Encodes width x height RGB pixels (3 bytes each, row-major) as PNG bytes (libpng); an Error
// with libpng's reason on failure.
std::string encode_rgb_png(const uint8_t* rgb, uint32_t width, uint32_t height);

// PNG bytes of a Cairo image surface (a cairo_surface_t*, kept opaque here); an Error with
// Cairo's reason on failure.
std::string encode_cairo_png(void* cairo_surface);

// The viridis colour of v (clamped to [0, 1]), interpolated between a table of control points.
std::array<uint8_t, 3> viridis(float v);

struct SpectrogramPngOptions {
    std::string title;        // e.g. the file name
    int sample_rate = 22050;  // for the axes
    int hop = 512;
    double fmax = 11025.0;  // top of the mel scale, Hz
    int chunk_seconds = 10;
    int row_scale = 2;           // pixel rows per mel band
    int max_chunks_per_row = 4;  // at one pixel per frame
    int max_rows = 12;           // beyond: time compressed to fit
};

struct PictureSize {
    int width = 0, height = 0;
};

// Draws the figure; returns its size.
PictureSize write_spectrogram_png(const std::string& path, const float* spec, int64_t n_chunks,
                                  int n_mels, int frames, const SpectrogramPngOptions& opt = {});

}  // namespace gnet
