// trellis/fakes/tls.h — test doubles for TLS (target trellis::fakes_tls, with trellis::tls).
//
// fakes/tls/test_certificate_authority.h  TestCertificateAuthority: certificates in memory
#pragma once

#include "trellis/fakes/tls/test_certificate_authority.h"
