/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Include this instead of <cmocka.h>: cmocka needs these headers first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
