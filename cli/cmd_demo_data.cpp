// gnet demo-data DIR: a small, clearly synthetic labelled collection for trying gnet without music.
#include <iostream>

#include "audio/synth.h"
#include "cli/commands.h"

namespace gnet::cli {

void register_demo_data(CLI::App& app, Context&) {
    auto opt = std::make_shared<DemoSetOptions>();
    CLI::App* cmd = app.add_subcommand(
        "demo-data",
        "Write a small synthetic labelled collection (WAV + labels.csv) to try gnet without music");
    cmd->add_option("out_dir", opt->out_dir, "Folder to write the tracks and labels.csv to")
        ->required();
    cmd->add_option("--tracks-per-genre", opt->tracks_per_genre, "Single-genre tracks per genre")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    cmd->add_option("--two-label", opt->two_label_tracks, "Extra tracks that mix two genres")
        ->check(CLI::Range(0, 10000))
        ->capture_default_str();
    cmd->add_option("--seconds", opt->seconds, "Length of every track")
        ->check(CLI::Range(1.0, 3600.0))
        ->capture_default_str();
    cmd->add_option("--seed", opt->seed, "Seed of the generators")->capture_default_str();
    cmd->footer(
        "Genres: pulse (kick + hi-hat), drone (slow chords), chime (bells), bass (plucked bass "
        "line).\n"
        "Examples:\n"
        "  gnet demo-data demo/music\n"
        "  gnet prepare demo/music --labels demo/music/labels.csv --out demo/data");
    cmd->callback([opt] {
        int n = write_demo_set(*opt);
        std::cout << "wrote " << n << " synthetic tracks and labels.csv to " << opt->out_dir
                  << "\n";
    });
}

}  // namespace gnet::cli
