// The metrics report of a checkpoint on a prepared split, as `gnet evaluate` prints it and as
// `gnet train` prints it for its best checkpoint at the end of a run.
#pragma once

#include <ostream>
#include <string>

#include "nn/device.h"

namespace gnet::cli {

enum class ReportLevels { All, TrackMean };  // every level, or only the track level (mean)

void print_evaluation(const std::string& model_path, const std::string& data_dir,
                      const std::string& split, Device device, int batch, ReportLevels levels,
                      std::ostream& out);

}  // namespace gnet::cli
