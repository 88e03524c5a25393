// curves.png, drawn with Cairo: two panels sharing the epoch axis, with a title, axis labels,
// ticks, grid and a legend: loss per epoch (train and validation BCE) on top, macro F1 per epoch
// (train, chunk level, and validation, track level with mean aggregation: the selection score)
// below; the best epoch (what best.safetensors holds) is marked in both panels.
#include <cairo.h>

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
    double r, g, b;
};
constexpr Rgb kTrain{0.12, 0.47, 0.71}, kVal{1.0, 0.50, 0.05}, kBest{0.17, 0.63, 0.17},
    kInk{0.15, 0.15, 0.15}, kGrid{0.88, 0.88, 0.88};

void set(cairo_t* cr, Rgb c) {
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

void text_at(cairo_t* cr, double x, double y, const std::string& s, double ax, double ay) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    cairo_move_to(cr, x - e.x_bearing - ax * e.width, y - e.y_bearing - ay * e.height);
    cairo_show_text(cr, s.c_str());
}

// A "nice" tick step (1, 2 or 5 x 10^k) giving about `target` ticks over `range`.
double nice_step(double range, int target) {
    const double raw = range / std::max(1, target);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

std::string tick_label(double v, double step) {
    char buf[32];
    const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

struct Series {
    const char* label;
    std::vector<double> y;
    Rgb colour;
};

void panel(cairo_t* cr, double x0, double y0, double w, double h, int epochs, double ymax,
           const char* ylabel, const std::vector<Series>& series, int best_epoch) {
    // Half an epoch of margin on each side: the first and last points (and a best epoch at
    // either end) stay clear of the frame.
    auto px = [&](double e) { return x0 + (e - 0.5) / epochs * w; };
    auto py = [&](double v) { return y0 + h - std::clamp(v / ymax, 0.0, 1.0) * h; };
    cairo_set_line_width(cr, 1);
    cairo_set_font_size(cr, 12);
    // Grid and y ticks.
    const double ystep = nice_step(ymax, 5);
    for (double v = 0; v <= ymax + 1e-12; v += ystep) {
        set(cr, kGrid);
        cairo_move_to(cr, x0, py(v) + 0.5);
        cairo_line_to(cr, x0 + w, py(v) + 0.5);
        cairo_stroke(cr);
        set(cr, kInk);
        text_at(cr, x0 - 6, py(v), tick_label(v, ystep), 1, 0.5);
    }
    // x ticks: epochs.
    const double xstep = std::max(1.0, nice_step(std::max(1, epochs - 1), 8));
    for (double e = 1; e <= epochs + 1e-9; e += xstep) {
        set(cr, kInk);
        cairo_move_to(cr, px(e), y0 + h);
        cairo_line_to(cr, px(e), y0 + h + 5);
        cairo_stroke(cr);
        text_at(cr, px(e), y0 + h + 8, tick_label(e, 1), 0.5, 0);
    }
    set(cr, kInk);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, w, h);
    cairo_stroke(cr);
    cairo_save(cr);
    cairo_translate(cr, x0 - 46, y0 + h / 2);
    cairo_rotate(cr, -M_PI / 2);
    cairo_set_font_size(cr, 13);
    text_at(cr, 0, 0, ylabel, 0.5, 0.5);
    cairo_restore(cr);
    // Best epoch.
    if (best_epoch >= 1) {
        set(cr, kBest);
        const double dash[] = {5, 4};
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, px(best_epoch), y0);
        cairo_line_to(cr, px(best_epoch), y0 + h);
        cairo_stroke(cr);
        cairo_set_dash(cr, nullptr, 0, 0);
    }
    // Lines with a dot per epoch; non-finite values leave a gap.
    for (const Series& s : series) {
        set(cr, s.colour);
        cairo_set_line_width(cr, 2);
        bool pen = false;
        for (size_t i = 0; i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) {
                pen = false;
                continue;
            }
            const double x = px(double(i + 1)), y = py(s.y[i]);
            pen ? cairo_line_to(cr, x, y) : cairo_move_to(cr, x, y);
            pen = true;
        }
        cairo_stroke(cr);
        for (size_t i = 0; i < s.y.size(); ++i)
            if (std::isfinite(s.y[i])) {
                cairo_arc(cr, px(double(i + 1)), py(s.y[i]), 3, 0, 2 * M_PI);
                cairo_fill(cr);
            }
    }
    // Legend above the panel's top right corner, outside the plotting area.
    cairo_set_font_size(cr, 12);
    double lx = x0 + w;
    for (auto it = series.rbegin(); it != series.rend(); ++it) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, it->label, &e);
        lx -= e.x_advance;
        set(cr, kInk);
        text_at(cr, lx, y0 - 10, it->label, 0, 0.5);
        lx -= 32;
        set(cr, it->colour);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, lx, y0 - 10);
        cairo_line_to(cr, lx + 25, y0 - 10);
        cairo_stroke(cr);
        cairo_arc(cr, lx + 12.5, y0 - 10, 3, 0, 2 * M_PI);
        cairo_fill(cr);
        lx -= 18;
    }
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<EpochRecord>& history) {
    const int W = 900, H = 720;
    const int E = int(history.size());
    std::vector<double> tl, vl, tf, vf;
    double lmax = 0;
    int best = 0;
    double best_score = 0, best_map = 0, best_f1 = 0;
    for (const EpochRecord& e : history) {
        tl.push_back(e.train_loss);
        vl.push_back(e.val_loss);
        tf.push_back(e.train_macro_f1);
        vf.push_back(e.val_f1);
        for (double v : {e.train_loss, e.val_loss})
            if (std::isfinite(v)) lmax = std::max(lmax, v);
        if (best == 0 || e.score > best_score) {  // ties keep the earlier epoch, as training
            best_score = e.score;
            best_map = e.val_map;
            best_f1 = e.val_f1;
            best = e.epoch;
        }
    }
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t* cr = cairo_create(surface);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    set(cr, kInk);
    cairo_set_font_size(cr, 17);
    char title[160];
    if (best > 0)
        std::snprintf(title, sizeof title,
                      "gnet train: %d epoch%s; best epoch %d (val track mAP %.3f, macro F1 %.3f)",
                      E, E == 1 ? "" : "s", best, best_map, best_f1);
    else
        std::snprintf(title, sizeof title, "gnet train: %d epochs", E);
    text_at(cr, W / 2.0, 12, title, 0.5, 0);
    const double x0 = 80, w = W - 110, h = 250;
    panel(cr, x0, 66, w, h, std::max(E, 1), lmax > 0 ? lmax * 1.08 : 1.0, "loss (BCE)",
          {{"train", tl, kTrain}, {"validation", vl, kVal}}, best);
    panel(cr, x0, 66 + h + 66, w, h, std::max(E, 1), 1.0, "macro F1",
          {{"train (chunks)", tf, kTrain}, {"validation (tracks, mean)", vf, kVal}}, best);
    set(cr, kInk);
    cairo_set_font_size(cr, 13);
    text_at(cr, x0 + w / 2, H - 16, "epoch", 0.5, 0.5);
    if (best > 0) {
        set(cr, kBest);
        cairo_set_font_size(cr, 12);
        text_at(cr, x0, H - 16, "- - best epoch (best.safetensors)", 0, 0.5);
    }
    std::string bytes;
    try {
        bytes = encode_cairo_png(surface);
    } catch (const Error& e) {
        cairo_destroy(cr);
        cairo_surface_destroy(surface);
        throw Error("cannot write " + path + ": " + e.what());
    }
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    write_file_atomic(path, bytes);
}

}  // namespace gnet
