#ifndef FTCP_CPCAP_SHIM_H
#define FTCP_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
