// gnet: command-line entry point. Errors leave here as one line on stderr:
// exit 1 for a failure, 2 for a usage error.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "build_info.h"
#include "cli/commands.h"
#include "kernels/error.h"
#include "nn/network.h"
#include "train/interrupt.h"

namespace gnet::cli {

namespace {
CLI::Validator number_check(const char* what, bool integer, bool allow_zero) {
    return CLI::Validator(
        [=](std::string& input) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(input.c_str(), &end);
            const bool parsed = end && end != input.c_str() && *end == '\0' && std::isfinite(v);
            const bool ok =
                parsed && (allow_zero ? v >= 0 : v > 0) && (!integer || v == std::floor(v));
            return ok ? std::string() : input + " is not " + what;
        },
        what);
}
}  // namespace

CLI::Validator positive_integer() {
    return number_check("a positive integer", true, false);
}
CLI::Validator non_negative_integer() {
    return number_check("a non-negative integer", true, true);
}
CLI::Validator positive_real() {
    return number_check("a positive number", false, false);
}
CLI::Validator non_negative_real() {
    return number_check("a non-negative number", false, true);
}

void add_device_option(CLI::App& cmd, std::string& device) {
    cmd.add_option("--device", device,
                   "auto (CUDA when a usable GPU is present, else CPU), cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda", "gpu"}))
        ->capture_default_str();
}

void add_precision_option(CLI::App& cmd) {
    cmd.add_option_function<std::string>(
           "--precision", [](const std::string& v) { set_precision_choice(parse_precision(v)); },
           "auto (bf16 tensor cores on a GPU that has them, else fp32), bf16 or fp32; on the CPU "
           "bf16 runs the slow bf16-faithful twins")
        ->check(CLI::IsMember({"auto", "bf16", "fp32"}))
        ->default_str("auto");
}

}  // namespace gnet::cli

int main(int argc, char** argv) {
    CLI::App app{"gnet: GPU-native music genre tagger (ResNet18 on log-mel spectrograms)", "gnet"};
    app.set_version_flag("--version", std::string("gnet ") + GNET_VERSION_STRING + " (" +
                                          GNET_GIT_COMMIT + ", " + GNET_BUILD_TYPE + ")");
    app.require_subcommand(1);
    app.footer(
        "Examples:\n"
        "  gnet info                                  build, GPUs and library versions\n"
        "  gnet prepare music/ --out data/            folder per genre -> training set\n"
        "  gnet spectrogram song.mp3 -o song.npy      log-mel images of a song (--png: a picture)\n"
        "  gnet train --data data/ --out run/ --epochs 30\n"
        "  gnet predict song.mp3 -m run/best.safetensors --strategy max\n"
        "  gnet demo-data demo/music                  a synthetic collection to try it all\n"
        "  gnet <command> --help                      options and examples of one command\n");
    gnet::cli::Context ctx;
    gnet::cli::register_info(app, ctx);
    gnet::cli::register_prepare(app, ctx);
    gnet::cli::register_train(app, ctx);
    gnet::cli::register_evaluate(app, ctx);
    gnet::cli::register_embed(app, ctx);
    gnet::cli::register_predict(app, ctx);
    gnet::cli::register_spectrogram(app, ctx);
    gnet::cli::register_bench(app, ctx);
    gnet::cli::register_demo_data(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help / --version exit 0; anything else is a usage error (exit 2) with one line.
        if (e.get_exit_code() == 0) return app.exit(e);
        // Point to the help of the subcommand the mistake is in.
        std::string help = "gnet --help";
        for (const CLI::App* sub : app.get_subcommands())
            help = "gnet " + sub->get_name() + " --help";
        std::cerr << "gnet: " << e.what() << " (see '" << help << "')\n";
        return 2;
    } catch (const gnet::Interrupted& e) {
        std::cerr << "\ngnet: " << e.what() << "\n";
        return 130;
    } catch (const gnet::UsageError& e) {
        std::cerr << "gnet: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "gnet: error: " << e.what() << "\n";
        return 1;
    }
    return ctx.exit_code;
}
