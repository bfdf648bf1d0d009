// trellis/asio.h — Boost.Asio interoperability: a Trellis run as the guest of an io_context,
// and Asio operations awaited from Trellis tasks (target trellis::asio).
#pragma once

#include "trellis/asio/asio_host.h"
#include "trellis/guest.h"
