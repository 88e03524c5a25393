// Packed shards: how `gnet prepare` stores a data set of many tracks (docs/data.md).
//
// DATA_DIR/shards/shard-NNNNN.npy   one NumPy .npy array per shard, shape (frames, 128), C order,
//                                   little-endian float32 ('<f4') or float16 ('<f2'): the log-mel
//                                   spectrograms of whole tracks back to back, frame-major (one
//                                   row of 128 mel bands per 512-sample hop), in dB *before* the
//                                   clip at max - top_db and the min-max scaling, so that a window
//                                   cut anywhere in a track can be scaled exactly as a chunk is.
//                                   numpy.load(path, mmap_mode="r") maps it; a chunk is
//                                   a[frame:frame + 431].T, then clip + min-max.
// DATA_DIR/shards/index.csv         one row per span (a stretch of one track's continuous audio,
//                                   never split over shards): shard,frame,frames,crc32,track.
//                                   With it and the .npy header (a fixed 128 bytes) a reader finds
//                                   any span by one seek, without scanning the shard; crc32 (zlib's
//                                   CRC-32 of the span's bytes as stored) catches a corrupt span.
//
// A span holds the 431-frame blocks of a track's consecutive kept chunks, each computed exactly as
// `predict` computes that chunk (its own zero padding at the chunk's edges), followed, for a track
// kept whole, by the frames of its remainder (the < 10 s after the last whole chunk, zero padded
// like predict's last chunk; the frames whose centre lies inside the audio). A fixed chunk is
// its block; a random 10 s window is any 431 consecutive frames of its span.
//
// Writing is streaming: the writer appends span after span to the open shard and starts a new one
// when the next span would push it past `max_bytes`; the header's frame count is rewritten when a
// shard is closed. Memory: one span.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

enum class ShardDtype { F32, F16 };
const char* shard_dtype_name(ShardDtype d);             // "float32" | "float16"
ShardDtype parse_shard_dtype(const std::string& text);  // UsageError otherwise
int shard_dtype_bytes(ShardDtype d);

constexpr int kShardBands = 128;            // mel bands per frame row
constexpr int64_t kShardHeaderBytes = 128;  // the .npy header of every shard, padding included

// IEEE binary16 <-> binary32, round to nearest even; infinities and NaN are kept.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

// CRC-32 (zlib's) of `n` bytes.
uint32_t crc32_bytes(const void* data, size_t n);

// A shard's .npy header: exactly kShardHeaderBytes bytes for any frame count up to 10^15.
std::string shard_header(ShardDtype dtype, int64_t frames);

struct ShardHeader {
    ShardDtype dtype = ShardDtype::F32;
    int64_t frames = 0;
};
// Reads and checks a shard's header and size: magic, version, dtype '<f2' or '<f4', C order,
// shape (frames, 128), and a file exactly header + frames * 128 * bytes long. Any difference
// (a truncated or foreign file) is an Error naming `path`.
ShardHeader read_shard_header(const std::string& path);

struct ShardLocation {
    int shard = 0;       // index into the writer's shard list
    int64_t frame = 0;   // first frame of the span in that shard
    uint32_t crc32 = 0;  // of the span's bytes as stored
};

class ShardWriter {
  public:
    // Shards go to dir/shard-00000.npy, dir/shard-00001.npy, ...; a shard is closed when the next
    // span would make it larger than max_bytes (a span larger than that gets a shard of its own).
    ShardWriter(std::string dir, ShardDtype dtype, int64_t max_bytes);
    ~ShardWriter();
    ShardWriter(const ShardWriter&) = delete;
    ShardWriter& operator=(const ShardWriter&) = delete;

    // Appends a span: x (frames, 128) frame-major float32 dB values. Write failures are Errors
    // naming the shard.
    ShardLocation append(const float* x, int64_t frames);
    // Closes the open shard (rewrites its header). Called by the destructor too (errors there are
    // swallowed: call it yourself).
    void finish();

    // File names (without the folder), in order.
    const std::vector<std::string>& shard_names() const { return names_; }

  private:
    void open_next();
    void close_current();

    std::string dir_;
    ShardDtype dtype_;
    int64_t max_bytes_;
    std::vector<std::string> names_;
    int fd_ = -1;
    int64_t frames_ = 0;  // in the open shard
    std::vector<uint16_t> half_;
};

// Reads `frames` frames from `first` of a shard into out (frames, 128) float32 (converted from
// float16 when stored so). With `expect_crc`, checks the bytes' CRC-32 first. Errors name the
// shard, the frame range and what is wrong (short read, CRC mismatch).
void read_shard_frames(const std::string& path, const ShardHeader& header, int64_t first,
                       int64_t frames, float* out, const uint32_t* expect_crc = nullptr);

// A 10 s window of a span: x (frames >= 431, 128) frame-major dB, window from frame `start` ->
// out (128, 431) mel-major, clipped at max - top_db and scaled to [0, 1] per window exactly as
// cpu::normalize_db_chunk does. A value that is not finite is an Error naming `what` and the frame.
void window_from_frames(const float* x, int64_t start, float* out, float top_db,
                        const std::string& what);

}  // namespace gnet
