#include "audio/png.h"

#include <cairo.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <vector>

#include "audio/mel_filterbank.h"
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

std::string encode_cairo_png(void* surface_ptr) {
    auto* surface = static_cast<cairo_surface_t*>(surface_ptr);
    cairo_surface_flush(surface);
    std::string bytes;
    cairo_status_t st = cairo_surface_write_to_png_stream(
        surface,
        [](void* closure, const unsigned char* data, unsigned int n) -> cairo_status_t {
            static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), n);
            return CAIRO_STATUS_SUCCESS;
        },
        &bytes);
    if (st != CAIRO_STATUS_SUCCESS)
        throw Error(std::string("cairo: ") + cairo_status_to_string(st));
    return bytes;
}

namespace {

std::string clock_text(double seconds) {
    long s = long(std::lround(seconds));
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

void text_at(cairo_t* cr, double x, double y, const std::string& s, double align_x,
             double align_y) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    cairo_move_to(cr, x - e.x_bearing - align_x * e.width, y - e.y_bearing - align_y * e.height);
    cairo_show_text(cr, s.c_str());
}

}  // namespace

PictureSize write_spectrogram_png(const std::string& path, const float* spec, int64_t n_chunks,
                                  int n_mels, int frames, const SpectrogramPngOptions& opt) {
    GNET_CHECK(n_chunks >= 1 && n_mels >= 1 && frames >= 1, "nothing to draw for " + path);
    GNET_CHECK(opt.row_scale >= 1 && opt.max_chunks_per_row >= 1 && opt.max_rows >= 1,
               "bad picture options for " + path);
    // Layout: rows of chunks; beyond max_rows, each row holds more chunks, averaged in time.
    const int64_t per_row =
        std::max<int64_t>(opt.max_chunks_per_row, (n_chunks + opt.max_rows - 1) / opt.max_rows);
    const int64_t rows = (n_chunks + per_row - 1) / per_row;
    const int64_t row_frames = per_row * frames;  // frames a full row spans
    const double frames_per_px = double(per_row) / opt.max_chunks_per_row;
    const int plot_w = int(std::ceil(double(std::min(per_row, n_chunks) * frames) / frames_per_px));
    const int plot_h = n_mels * opt.row_scale;
    const int left = 78, right = 130, top = 46, gap = 34, bottom = 44;
    const int W = left + plot_w + right;
    const int H = top + int(rows) * (plot_h + gap) - gap + bottom;

    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t* cr = cairo_create(surface);
    auto release = [&] {
        cairo_destroy(cr);
        cairo_surface_destroy(surface);
    };
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);

    // The heat map, pixel by pixel into the surface's memory.
    cairo_surface_flush(surface);
    unsigned char* px = cairo_image_surface_get_data(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const double total_frames = double(n_chunks) * frames;
    for (int64_t r = 0; r < rows; ++r) {
        const int y0 = top + int(r) * (plot_h + gap);
        for (int x = 0; x < plot_w; ++x) {
            const double f0 = double(r * row_frames) + x * frames_per_px;
            const double f1 = std::min(f0 + frames_per_px, double((r + 1) * row_frames));
            if (f0 >= total_frames) break;
            const int64_t a = int64_t(f0), b = std::max(a + 1, std::min(int64_t(std::ceil(f1)),
                                                                        int64_t(total_frames)));
            for (int m = 0; m < n_mels; ++m) {
                double sum = 0;
                for (int64_t f = a; f < b; ++f)
                    sum += spec[((f / frames) * n_mels + m) * frames + f % frames];
                const auto rgb = viridis(float(sum / double(b - a)));
                for (int k = 0; k < opt.row_scale; ++k) {
                    const int y = y0 + (n_mels - 1 - m) * opt.row_scale + k;
                    uint32_t* p =
                        reinterpret_cast<uint32_t*>(px + size_t(y) * size_t(stride)) + left + x;
                    *p = (uint32_t(rgb[0]) << 16) | (uint32_t(rgb[1]) << 8) | rgb[2];
                }
            }
        }
    }
    cairo_surface_mark_dirty(surface);

    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, 15);
    char head[256];
    std::snprintf(head, sizeof head, "%s  (%s, %lld chunk%s of %d s, log-mel, %d bands)",
                  opt.title.c_str(), clock_text(double(n_chunks) * opt.chunk_seconds).c_str(),
                  (long long)n_chunks, n_chunks == 1 ? "" : "s", opt.chunk_seconds, n_mels);
    text_at(cr, left, 14, head, 0, 0);
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);

    // Frequency ticks at the mel position of round frequencies (Slaney scale, 0 .. fmax).
    const double mel_top = hz_to_mel_slaney(opt.fmax);
    const double seconds_per_frame = double(opt.hop) / opt.sample_rate;
    const double row_seconds = double(per_row) * opt.chunk_seconds;
    const double tick_step = row_seconds <= 40    ? 5
                             : row_seconds <= 120 ? 10
                             : row_seconds <= 600 ? 60
                                                  : 300;
    for (int64_t r = 0; r < rows; ++r) {
        const int y0 = top + int(r) * (plot_h + gap);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        const double row_w = std::min<double>(
            plot_w,
            std::ceil(double(std::min(per_row, n_chunks - r * per_row) * frames) / frames_per_px));
        cairo_rectangle(cr, left - 0.5, y0 - 0.5, row_w + 1, plot_h + 1);
        cairo_stroke(cr);
        for (double hz : {0.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0}) {
            if (hz > opt.fmax) continue;
            const double y = y0 + plot_h * (1.0 - hz_to_mel_slaney(hz) / mel_top);
            cairo_move_to(cr, left - 5, y);
            cairo_line_to(cr, left, y);
            cairo_stroke(cr);
            text_at(cr, left - 8, y,
                    hz >= 1000 ? std::to_string(int(hz / 1000)) + " kHz"
                               : std::to_string(int(hz)) + " Hz",
                    1, 0.5);
        }
        // Time ticks along the bottom of the row.
        const double t0 = double(r) * row_seconds;
        const double t_end = std::min(t0 + row_seconds, double(n_chunks) * opt.chunk_seconds);
        for (double t = std::ceil(t0 / tick_step) * tick_step; t <= t_end + 1e-9; t += tick_step) {
            const double x = left + (t - t0) / seconds_per_frame / frames_per_px;
            cairo_move_to(cr, x, y0 + plot_h);
            cairo_line_to(cr, x, y0 + plot_h + 5);
            cairo_stroke(cr);
            text_at(cr, x, y0 + plot_h + 7, clock_text(t), 0.5, 0);
        }
        // Chunk boundaries: thin light lines (left out when time is compressed: too dense).
        cairo_set_source_rgba(cr, 1, 1, 1, 0.6);
        for (int64_t c = 1; frames_per_px <= 1 && c < per_row && r * per_row + c < n_chunks; ++c) {
            const double x = left + double(c * frames) / frames_per_px;
            cairo_move_to(cr, x, y0);
            cairo_line_to(cr, x, y0 + plot_h);
            cairo_stroke(cr);
        }
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_save(cr);
    cairo_translate(cr, 14, top + plot_h / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "frequency (mel scale)", 0.5, 0.5);
    cairo_restore(cr);
    text_at(cr, left + plot_w / 2.0, H - 10, "time (m:ss)", 0.5, 0.5);

    // Colour bar: each chunk's dB scaled to [0, 1] (floor at most 80 dB below its peak).
    const int bx = left + plot_w + 30, bw = 16, by = top, bh = plot_h;
    for (int y = 0; y < bh; ++y) {
        const auto rgb = viridis(1.f - float(y) / float(bh - 1));
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        cairo_rectangle(cr, bx, by + y, bw, 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, bx + bw + 4, by, "1: peak", 0, 0);
    text_at(cr, bx + bw + 4, by + bh, "0: floor", 0, 1);
    cairo_save(cr);
    cairo_translate(cr, bx - 8, by + bh / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "dB, min-max per chunk", 0.5, 0.5);
    cairo_restore(cr);

    std::string bytes;
    try {
        if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
            throw Error(std::string("cairo: ") +
                        cairo_status_to_string(cairo_surface_status(surface)));
        bytes = encode_cairo_png(surface);
    } catch (const Error& e) {
        release();
        throw Error("cannot write PNG '" + path + "': " + e.what());
    }
    release();
    write_file_atomic(path, bytes);
    return {W, H};
}

}  // namespace gnet
