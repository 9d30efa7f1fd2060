/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The request document, byte for byte as update_engine writes it (spec §1.2), with one deliberate
 * difference: '"' in an attribute value is written as &quot;. update_engine's libxml2 helper leaves it
 * alone, which turns a value such as MACHINE_ALIAS="a"b" into malformed XML (flatcar/Flatcar#1424). */

#include "omaha-client-config.h"

#define OMAHA_NO_ERRORCODE UINT32_MAX

typedef enum OmahaEventType {
        OMAHA_EVENT_UPDATE_COMPLETE = 3,
        OMAHA_EVENT_DOWNLOAD_STARTED = 13,
        OMAHA_EVENT_DOWNLOAD_FINISHED = 14,
} OmahaEventType;

typedef enum OmahaEventResult {
        OMAHA_RESULT_ERROR = 0,
        OMAHA_RESULT_SUCCESS = 1,
        OMAHA_RESULT_SUCCESS_REBOOT = 2,
        OMAHA_RESULT_DEFERRED = 9,
} OmahaEventResult;

typedef struct OmahaEvent {
        unsigned type;
        unsigned result;
        uint32_t errorcode;           /* OMAHA_NO_ERRORCODE: none written */
        const char *previous_version; /* NULL: no previousversion attribute */
} OmahaEvent;

typedef struct OmahaRequest {
        bool interactive;  /* installsource="ondemandupdate" */
        bool ping;
        bool updatecheck;
        const OmahaEvent *event; /* NULL: none */
        const char *alephversion;
} OmahaRequest;

/* An error event for a base code of spec §1.6 with this machine's flags: result 9 for the deferred codes
 * (35, 36, 40), 0 otherwise. */
OmahaEvent omaha_event_error(uint32_t code, uint32_t flags);

/* s escaped for an attribute value: < > & " and everything outside printable ASCII as &#xHEX;. */
int omaha_xml_escape(const char *s, char **ret);

int omaha_request_build(const OmahaConfig *c, const OmahaRequest *req, char **ret);
