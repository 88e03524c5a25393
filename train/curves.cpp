// curves.png: a tiny line plotter (RGB canvas, Bresenham lines, a 3x5 digit font) encoded by
// audio/png.h. Two panels: loss (top, y from 0 to the largest loss) and macro F1 (bottom, y from 0
// to 1); x = epochs 1..E. Blue = train, orange = validation. The number at the top left of a panel
// is its y maximum, the one at the bottom right the last epoch.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "audio/png.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "train/trainer.h"

namespace gnet {

namespace {

struct Rgb {
    unsigned char r, g, b;
};
constexpr Rgb kWhite{255, 255, 255}, kFrame{90, 90, 90}, kGrid{225, 225, 225}, kTrain{31, 119, 180},
    kVal{255, 127, 14}, kText{40, 40, 40};

class Canvas {
  public:
    Canvas(int w, int h) : w_(w), h_(h), px_(size_t(w) * size_t(h), kWhite) {}
    void set(int x, int y, Rgb c) {
        if (x >= 0 && y >= 0 && x < w_ && y < h_) px_[size_t(y) * size_t(w_) + size_t(x)] = c;
    }
    void rect(int x0, int y0, int x1, int y1, Rgb c) {
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x)
                set(x, y, c);
    }
    void line(int x0, int y0, int x1, int y1, Rgb c, int thick) {
        int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
        int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
        for (;;) {
            rect(x0 - thick / 2, y0 - thick / 2, x0 + (thick - 1) / 2, y0 + (thick - 1) / 2, c);
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) {
                err += dy;
                x0 += sx;
            }
            if (e2 <= dx) {
                err += dx;
                y0 += sy;
            }
        }
    }
    // Digits and '.', 3x5 cells scaled by `s`.
    void text(int x, int y, const std::string& s, Rgb c, int scale) {
        static const unsigned short glyph[11] = {0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9, 0x79CF,
                                                 0x79EF, 0x7249, 0x7BEF, 0x7BCF, 0x0002};
        for (char ch : s) {
            int gi = ch == '.' ? 10 : (ch >= '0' && ch <= '9') ? ch - '0' : -1;
            if (gi >= 0)
                for (int row = 0; row < 5; ++row)
                    for (int col = 0; col < 3; ++col)
                        if (glyph[gi] >> (14 - (row * 3 + col)) & 1)
                            rect(x + col * scale, y + row * scale, x + col * scale + scale - 1,
                                 y + row * scale + scale - 1, c);
            x += 4 * scale;
        }
    }
    std::string png() const;

  private:
    int w_, h_;
    std::vector<Rgb> px_;
};

std::string Canvas::png() const {
    static_assert(sizeof(Rgb) == 3, "Canvas pixels are packed RGB");
    return encode_rgb_png(reinterpret_cast<const uint8_t*>(px_.data()), uint32_t(w_), uint32_t(h_));
}

std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v >= 10 ? "%.1f" : "%.3f", v);
    return buf;
}

void panel(Canvas& c, int x0, int y0, int x1, int y1, double ymax,
           const std::vector<std::vector<double>>& series, const std::vector<Rgb>& colors) {
    for (int k = 1; k < 5; ++k) {
        int y = y1 - (y1 - y0) * k / 5;
        c.line(x0, y, x1, y, kGrid, 1);
    }
    c.line(x0, y0, x1, y0, kFrame, 1);
    c.line(x0, y1, x1, y1, kFrame, 1);
    c.line(x0, y0, x0, y1, kFrame, 1);
    c.line(x1, y0, x1, y1, kFrame, 1);
    const int E = int(series.empty() ? 0 : series[0].size());
    auto px = [&](int i) { return E <= 1 ? (x0 + x1) / 2 : x0 + 8 + (x1 - x0 - 16) * i / (E - 1); };
    auto py = [&](double v) {
        double t = ymax > 0 ? std::clamp(v / ymax, 0.0, 1.0) : 0.0;
        return y1 - 4 - int(std::lround(t * (y1 - y0 - 8)));
    };
    for (size_t s = 0; s < series.size(); ++s) {
        for (int i = 0; i < E; ++i) {
            double v = series[s][size_t(i)];
            if (!std::isfinite(v)) continue;
            c.rect(px(i) - 2, py(v) - 2, px(i) + 2, py(v) + 2, colors[s]);
            if (i > 0 && std::isfinite(series[s][size_t(i - 1)]))
                c.line(px(i - 1), py(series[s][size_t(i - 1)]), px(i), py(v), colors[s], 2);
        }
    }
    c.text(x0 + 6, y0 + 6, short_number(ymax), kText, 2);
    std::string last = std::to_string(E);
    c.text(x1 - 6 - int(last.size()) * 8, y1 - 16, last, kText, 2);
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<EpochRecord>& history) {
    const int W = 640, H = 520;
    Canvas c(W, H);
    std::vector<double> tl, vl, tf, vf;
    double lmax = 0;
    for (const EpochRecord& e : history) {
        tl.push_back(e.train_loss);
        vl.push_back(e.val_loss);
        tf.push_back(e.train_macro_f1);
        vf.push_back(e.val_f1);
        for (double v : {e.train_loss, e.val_loss})
            if (std::isfinite(v)) lmax = std::max(lmax, v);
    }
    panel(c, 20, 20, W - 20, H / 2 - 10, lmax > 0 ? lmax * 1.05 : 1.0, {tl, vl}, {kTrain, kVal});
    panel(c, 20, H / 2 + 10, W - 20, H - 20, 1.0, {tf, vf}, {kTrain, kVal});
    write_file_atomic(path, c.png());
}

}  // namespace gnet
