// How `gnet predict` prints its results: a human table, one JSON document, or CSV rows.
// Only results go to stdout, so the output can be piped.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "train/predict.h"

namespace gnet::cli {

enum class OutputFormat { Table, Json, Csv };
OutputFormat parse_output_format(const std::string& text);

class PredictPrinter {
  public:
    PredictPrinter(std::ostream& out, OutputFormat format, std::vector<std::string> genres,
                   int top_k, bool segments);
    void begin();
    void track(const TrackPrediction& t);
    // A file that could not be tagged: an {"file", "error"} entry in JSON (table and CSV
    // leave it to the message on stderr).
    void error(const std::string& file, const std::string& reason);
    void end();

  private:
    std::ostream& out_;
    OutputFormat format_;
    std::vector<std::string> genres_;
    int top_k_;
    bool segments_;
    int count_ = 0;
};

}  // namespace gnet::cli
