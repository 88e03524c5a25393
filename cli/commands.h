// Every subcommand registers itself on the app; main.cpp only wires them up and turns errors into
// one line and an exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace gnet::cli {

// What a command reports back to main beyond success/exception: e.g. predict sets 1 when some
// (not all) files failed, after printing the results of the others.
struct Context {
    int exit_code = 0;
};

void register_info(CLI::App& app, Context& ctx);
void register_prepare(CLI::App& app, Context& ctx);
void register_demo_data(CLI::App& app, Context& ctx);
void register_spectrogram(CLI::App& app, Context& ctx);
void register_predict(CLI::App& app, Context& ctx);
void register_bench(CLI::App& app, Context& ctx);
void register_train(CLI::App& app, Context& ctx);
void register_evaluate(CLI::App& app, Context& ctx);
void register_embed(CLI::App& app, Context& ctx);

// Range checks with plain messages ("--top-k: 0 is not a positive integer"), instead of CLI11's
// PositiveNumber, whose message spells out DBL_MAX in 300 digits.
CLI::Validator positive_integer();
CLI::Validator non_negative_integer();
CLI::Validator positive_real();
CLI::Validator non_negative_real();

// The --device option every command shares: auto | cpu | cuda.
void add_device_option(CLI::App& cmd, std::string& device);
// --precision auto|bf16|fp32 (nn/network.h: Precision), for the commands that build a model.
void add_precision_option(CLI::App& cmd);

}  // namespace gnet::cli
