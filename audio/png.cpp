#include "audio/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <vector>

#include "kernels/error.h"
#include "nn/atomic_file.h"

namespace gnet {

namespace {

// Viridis at v = 0, 1/9, ..., 1 (matplotlib's colour map sampled at ten points); linear in between.
constexpr uint8_t kViridis[10][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e},
    {0x26, 0x82, 0x8e}, {0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58},
    {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25},
};
constexpr uint8_t kSeparator[3] = {0xd0, 0xd0, 0xd0};

struct PngSink {
    std::string bytes;
    char error[256] = {0};
};

void png_append(png_structp png, png_bytep data, png_size_t n) {
    auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
    sink->bytes.append(reinterpret_cast<const char*>(data), n);
}
void png_flush_nothing(png_structp) {}

void png_error_to_sink(png_structp png, png_const_charp msg) {
    auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
    std::snprintf(sink->error, sizeof sink->error, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}
void png_ignore_warning(png_structp, png_const_charp) {}

// Encodes rows of RGB pixels; only plain data lives across the setjmp. Returns false on failure.
bool encode_png(PngSink& sink, const std::vector<png_bytep>& rows, uint32_t width,
                uint32_t height) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_error_to_sink,
                                              png_ignore_warning);
    if (!png) return false;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : nullptr);
        return false;
    }
    png_set_write_fn(png, &sink, png_append, png_flush_nothing);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, const_cast<png_bytepp>(rows.data()));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return true;
}

}  // namespace

std::string encode_rgb_png(const uint8_t* rgb, uint32_t width, uint32_t height) {
    std::vector<png_bytep> rows(height);
    for (uint32_t y = 0; y < height; ++y)
        rows[y] = const_cast<png_bytep>(rgb) + size_t(y) * width * 3;
    PngSink sink;
    if (!encode_png(sink, rows, width, height))
        throw Error(std::string("libpng: ") + (sink.error[0] ? sink.error : "setup failed"));
    return std::move(sink.bytes);
}

std::array<uint8_t, 3> viridis(float v) {
    if (!(v > 0.f)) v = 0.f;  // NaN -> 0
    if (v > 1.f) v = 1.f;
    const float pos = v * 9.f;
    const int i = std::min(int(pos), 8);
    const float f = pos - float(i);
    std::array<uint8_t, 3> rgb{};
    for (int c = 0; c < 3; ++c)
        rgb[size_t(c)] =
            uint8_t(std::lround(kViridis[i][c] + f * (float(kViridis[i + 1][c]) - kViridis[i][c])));
    return rgb;
}

void write_spectrogram_png(const std::string& path, const float* spec, int64_t n_chunks, int n_mels,
                           int frames, const SpectrogramPngOptions& opt) {
    GNET_CHECK(n_chunks >= 1 && n_mels >= 1 && frames >= 1, "nothing to draw for " + path);
    GNET_CHECK(opt.row_scale >= 1 && opt.separator_width >= 0, "bad picture options for " + path);
    const int64_t width64 = n_chunks * frames + (n_chunks - 1) * opt.separator_width;
    GNET_CHECK(width64 <= (1 << 24),
               "picture too wide for " + path + " (" + std::to_string(width64) + " px)");
    const uint32_t width = uint32_t(width64), height = uint32_t(n_mels * opt.row_scale);
    std::vector<uint8_t> pixels(size_t(width) * height * 3);
    for (uint32_t y = 0; y < height; ++y) {
        const int m = n_mels - 1 - int(y) / opt.row_scale;  // low frequencies at the bottom
        uint8_t* row = pixels.data() + size_t(y) * width * 3;
        uint32_t x = 0;
        for (int64_t c = 0; c < n_chunks; ++c) {
            if (c > 0)
                for (int s = 0; s < opt.separator_width; ++s, ++x)
                    std::copy(kSeparator, kSeparator + 3, row + x * 3);
            const float* band = spec + (c * n_mels + m) * int64_t(frames);
            for (int t = 0; t < frames; ++t, ++x) {
                const auto rgb = viridis(band[t]);
                std::copy(rgb.begin(), rgb.end(), row + size_t(x) * 3);
            }
        }
    }
    std::string bytes;
    try {
        bytes = encode_rgb_png(pixels.data(), width, height);
    } catch (const Error& e) {
        throw Error("cannot write PNG '" + path + "': " + e.what());
    }
    write_file_atomic(path, bytes);
}

}  // namespace gnet
