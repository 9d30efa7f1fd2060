/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What Azure and AzureStack share: WireServer discovery and version check, goal state, ready report. */

#include "metadata-agent-provider.h"

#define AZURE_WIRESERVER_FALLBACK "168.63.129.16"
#define AZURE_WIRESERVER_VERSION "2012-11-30"
#define AZURE_WS_HEADERS 2

extern const HttpHeader azure_ws_headers[AZURE_WS_HEADERS];

typedef struct Azure {
        char *ws;   /* http://<wireserver> */
        char *imds; /* http://169.254.169.254 */
} Azure;

/* Finds the WireServer (SWITCHYARD_METADATA_URL_AZURE_WIRESERVER, DHCP option 245, else 168.63.129.16) and
 * checks that it speaks 2012-11-30. The IMDS base is SWITCHYARD_METADATA_URL_<p->env_name>. */
int azure_init(ProviderContext *c, const Provider *p, Azure *a);
void azure_done(Azure *a);
int azure_goal_state_request(const Azure *a, FetchRequest *req);
/* Fetches the goal state and posts the ready report, retried as afterburn does. */
int azure_report_ready(ProviderContext *c, const Provider *p);
