#include "train/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/error.h"

namespace gnet {

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed) {
    std::vector<size_t> p(n);
    std::iota(p.begin(), p.end(), size_t(0));
    std::mt19937_64 rng(seed);
    for (size_t i = n; i > 1; --i) {
        size_t j = size_t(rng() % i);  // modulo bias is negligible for n << 2^64
        std::swap(p[i - 1], p[j]);
    }
    return p;
}

std::vector<bool> split_tracks(const std::vector<std::vector<uint8_t>>& labels, double val_fraction,
                               uint64_t seed) {
    GNET_CHECK(val_fraction >= 0 && val_fraction < 1,
               "--val-fraction must be in [0, 1), got " + std::to_string(val_fraction));
    const size_t n = labels.size();
    const size_t G = n ? labels[0].size() : 0;
    std::vector<bool> is_val(n, false);
    if (n == 0 || val_fraction == 0) return is_val;

    std::vector<size_t> order = seeded_permutation(n, seed);
    std::vector<int64_t> total(G, 0), in_val(G, 0);
    for (const auto& l : labels)
        for (size_t g = 0; g < G; ++g)
            total[g] += l[g];
    size_t n_val = size_t(std::llround(val_fraction * double(n)));
    n_val = std::max<size_t>(1, std::min(n_val, n - 1));
    size_t val_count = 0;

    auto put_in_val = [&](size_t t) {
        is_val[t] = true;
        ++val_count;
        for (size_t g = 0; g < G; ++g)
            in_val[g] += labels[t][g];
    };
    // Would moving track t to validation leave some genre without a training track?
    auto starves_train = [&](size_t t) {
        for (size_t g = 0; g < G; ++g)
            if (labels[t][g] && total[g] - in_val[g] <= 1) return true;
        return false;
    };

    // 1. Every genre with >= 2 tracks is represented in validation (rarest genres first).
    std::vector<size_t> genres_by_rarity(G);
    std::iota(genres_by_rarity.begin(), genres_by_rarity.end(), size_t(0));
    std::stable_sort(genres_by_rarity.begin(), genres_by_rarity.end(),
                     [&](size_t a, size_t b) { return total[a] < total[b]; });
    for (size_t g : genres_by_rarity) {
        if (total[g] < 2 || in_val[g] > 0) continue;
        for (size_t t : order) {
            if (!is_val[t] && labels[t][g] && !starves_train(t)) {
                put_in_val(t);
                break;
            }
        }
    }
    // 2. Stratify: take a track while one of its genres is below its share.
    for (size_t t : order) {
        if (val_count >= n_val) break;
        if (is_val[t] || starves_train(t)) continue;
        bool wanted = false;
        for (size_t g = 0; g < G; ++g)
            if (labels[t][g] && double(in_val[g]) + 0.5 <= val_fraction * double(total[g]))
                wanted = true;
        if (wanted) put_in_val(t);
    }
    // 3. Fill up to the requested fraction in shuffled order.
    for (size_t t : order) {
        if (val_count >= n_val) break;
        if (!is_val[t] && !starves_train(t)) put_in_val(t);
    }
    return is_val;
}

}  // namespace gnet
