// Which files are audio, and finding them under a folder (recursively, sorted, so runs are
// reproducible whatever order the file system lists them in).
#pragma once

#include <string>
#include <vector>

namespace gnet {

// By extension, case-insensitive: libsndfile's (wav, flac, ogg, oga, opus, mp3, au, snd, aif,
// aiff, aifc, w64, caf) and FFmpeg's (m4a, m4b, mp4, mov, aac, wma, asf, mka, webm, ape, wv,
// mp2, tta, ac3, mpc, amr).
bool is_audio_file(const std::string& path);

// Every audio file under `dir`, recursively, as paths relative to `dir` ('/'-separated), sorted
// bytewise. Hidden files and folders (starting with '.') are skipped. An Error when `dir` is not
// a readable folder.
// Links to files count as the file at the link's own path (never the target's).
std::vector<std::string> list_audio_files(const std::string& dir);

// Every non-hidden entry under `dir` that is not a folder (regular files, links, FIFOs, ...), the
// same way: relative, sorted, lexical.
std::vector<std::string> list_files(const std::string& dir);

}  // namespace gnet
