// How the shim's functions report a C++ exception: a message the Rust side frees with
// stoker_native_free_error (defined in native.cpp with the message it never frees).

#pragma once

// A copy of `what` for the caller to free, or a static message when even that cannot be
// allocated (which stoker_native_free_error leaves alone).
char *stoker_native_error(const char *what);
