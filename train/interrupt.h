// Ctrl-C (SIGINT) and SIGTERM during long work (prepare, train): the first signal sets a flag that
// the work loops check at safe points (between tracks, between training steps), so they stop with
// their files consistent and say what happened and how to continue; a second signal ends the
// process at once, as usual. main.cpp turns Interrupted into exit code 130.
#pragma once

#include <string>

#include "kernels/error.h"

namespace gnet {

class Interrupted : public Error {
  public:
    explicit Interrupted(const std::string& what) : Error(what) {}
};

// Installs the handlers (idempotent).
void install_interrupt_handler();
bool interrupt_requested();
// For tests: as if Ctrl-C had been pressed (or cleared).
void request_interrupt(bool on = true);

}  // namespace gnet
