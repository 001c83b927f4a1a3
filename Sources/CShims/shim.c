// Everything CShims offers is static inline in include/shim.h; SwiftPM wants
// one source file per C target.
#include "shim.h"
