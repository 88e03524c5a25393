// Writes tiny audio files (0.05 s, stereo) in the formats libsndfile and FFmpeg decode, as seeds of
// fuzz/corpus/audio. Each file is prefixed by the byte that makes fuzz_audio.cpp pick its
// extension. Usage: fuzz_make_audio_seeds OUT_DIR
#include <sndfile.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/ffmpeg_writer.h"

namespace {

// Index in fuzz_audio.cpp's extension table.
enum Ext {
    kWav = 0,
    kFlac = 1,
    kOgg = 2,
    kMp3 = 3,
    kM4a = 4,
    kAiff = 5,
    kAu = 6,
    kWma = 7,
    kOpus = 8
};

std::vector<float> tone(int rate, int channels) {
    const int n = rate / 20;
    std::vector<float> x(size_t(n * channels));
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < channels; ++c)
            x[size_t(i * channels + c)] = 0.3f * float(std::sin(0.05 * i * (c + 1)));
    return x;
}

void prefix(const std::string& path, int ext) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream out(path, std::ios::binary);
    out << char(ext) << bytes;
}

void sndfile(const std::string& path, int format, int rate, int ext) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 2;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), sf_strerror(nullptr));
        return;
    }
    std::vector<float> x = tone(rate, 2);
    sf_writef_float(f, x.data(), sf_count_t(x.size() / 2));
    sf_close(f);
    prefix(path, ext);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const std::string d = argv[1];
    sndfile(d + "/pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, kWav);
    sndfile(d + "/float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 8000, kWav);
    sndfile(d + "/a.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 8000, kFlac);
    sndfile(d + "/a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 8000, kOgg);
    sndfile(d + "/a.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 8000, kOpus);
    sndfile(d + "/a.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 8000, kMp3);
    sndfile(d + "/a.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 8000, kAiff);
    sndfile(d + "/a.au", SF_FORMAT_AU | SF_FORMAT_ULAW, 8000, kAu);
    gnet::test::write_with_ffmpeg(d + "/aac.m4a", "ipod", "aac", tone(8000, 2), 2, 8000);
    prefix(d + "/aac.m4a", kM4a);
    gnet::test::write_with_ffmpeg(d + "/alac.m4a", "ipod", "alac", tone(8000, 2), 2, 8000);
    prefix(d + "/alac.m4a", kM4a);
    gnet::test::write_with_ffmpeg(d + "/a.wma", "asf", "wmav2", tone(8000, 2), 2, 8000);
    prefix(d + "/a.wma", kWma);
    return 0;
}
