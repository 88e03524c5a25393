// Shared by the fuzz harnesses: libFuzzer's entry point, and a private scratch folder for the
// parsers that read files (labels CSV, manifest, audio).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace gnet::fuzz {

// A folder under $TMPDIR made once per process (removed at exit).
const std::string& scratch_dir();
// Writes bytes to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string& name, const uint8_t* data, size_t size);

}  // namespace gnet::fuzz
