// Test fixtures in formats libsndfile cannot write (M4A/AAC, ALAC, WMA, ...): encoded at test time
// with FFmpeg's own encoders, so every test makes the real file it decodes.
#pragma once

#include <string>
#include <vector>

namespace gnet::test {

// Encodes interleaved float samples with the encoder `codec` ("aac", "alac", "wmav2", ...) into
// the container `format` ("ipod" = .m4a, "asf" = .wma, "mp4", "matroska"); REQUIREs success.
void write_with_ffmpeg(const std::string& path, const std::string& format, const std::string& codec,
                       const std::vector<float>& interleaved, int channels, int rate);

}  // namespace gnet::test
