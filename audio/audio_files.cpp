#include "audio/audio_files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "kernels/error.h"

namespace fs = std::filesystem;

namespace gnet {

bool is_audio_file(const std::string& path) {
    // libsndfile's formats, then what FFmpeg decodes (audio/decode.h).
    static const char* const kExtensions[] = {
        ".wav",  ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au",  ".snd", ".aif", ".aiff",
        ".aifc", ".w64",  ".caf", ".m4a", ".m4b",  ".mp4", ".mov", ".aac", ".wma", ".asf",
        ".mka",  ".webm", ".ape", ".wv",  ".mp2",  ".tta", ".ac3", ".mpc", ".amr"};
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* e : kExtensions)
        if (ext == e) return true;
    return false;
}

std::vector<std::string> list_files(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a folder");
    std::vector<std::string> out;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    if (ec) throw Error(dir + ": cannot list folder: " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw Error(dir + ": cannot list folder: " + ec.message());
        const fs::path& p = it->path();
        if (p.filename().string().rfind('.', 0) == 0) {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_directory(ec)) continue;
        // Lexical, never resolved: a symbolic link keeps its own path (and so its own genre
        // folder), wherever it points.
        out.push_back(p.lexically_relative(dir).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> list_audio_files(const std::string& dir) {
    std::vector<std::string> out;
    for (const std::string& f : list_files(dir)) {
        std::error_code ec;
        if (is_audio_file(f) && fs::is_regular_file(fs::path(dir) / f, ec)) out.push_back(f);
    }
    return out;
}

}  // namespace gnet
