"""The ``-h`` text: nmap's grouping, leadline's flags."""

from leadline._version import __version__

__all__ = ["HELP"]

HELP = f"""leadline {__version__} - a network mapper with nmap's flags
Usage: leadline [Scan Type(s)] [Options] {{target specification}}
       leadline lab up|down|status|exec CMD|shell
       leadline trace HOST   (the route to HOST, laid out as traceroute(8) does; root)
       leadline db import|list|hosts|history|export ...;  leadline diff A B;  leadline report RUN|FILE
TARGET SPECIFICATION:
  Can pass hostnames, IP addresses, networks, etc.
  Ex: scanme.example, 198.18.1.0/24, 198.18.0-255.1-254, 2001:db8::/120 (with -6)
  -iL <inputfilename>: Input from list of hosts/networks
  --exclude <host1[,host2][,host3],...>: Exclude hosts/networks
  --excludefile <exclude_file>: Exclude list from file
HOST DISCOVERY:
  -sL: List Scan - simply list targets to scan (with reverse DNS)
  -sn: Ping Scan - disable port scan
  -Pn: Treat all hosts as online -- skip host discovery
  -PS/PA/PU[portlist]: TCP SYN/ACK or UDP discovery to given ports
  -PE/PP/PM: ICMP echo, timestamp, and netmask request discovery probes
  -PR: ARP ping;  --disable-arp-ping: no ARP or ND discovery
  -n/-R: Never do DNS resolution/Always resolve [default: sometimes]
  --privileged/--unprivileged: Assume raw sockets are (not) available
SCAN TECHNIQUES:
  -sS/sT/sA/sW/sM: TCP SYN/Connect()/ACK/Window/Maimon scans
  -sN/sF/sX: TCP Null, FIN, and Xmas scans
  --scanflags <flags>: Customize TCP scan flags
  -sI <zombie host[:probeport]>: Idle scan
  -b <FTP relay host>: FTP bounce scan
PORT SPECIFICATION AND SCAN ORDER:
  -p <port ranges>: Only scan specified ports
    Ex: -p22; -p1-65535; -p U:53,111,137,T:21-25,80,139,8080; -p http
  --exclude-ports <port ranges>: Exclude the specified ports from scanning
  -F: Fast mode - Scan fewer ports than the default scan
  -r: Scan ports sequentially - don't randomize
  --randomize-hosts: Scan hosts in random order (shuffled 16384 at a time)
  --top-ports <number>: Scan <number> most common ports
TIMING AND PERFORMANCE:
  Options which take <time> are in seconds, or append 'ms' (milliseconds),
  's' (seconds), 'm' (minutes), or 'h' (hours) to the value (e.g. 30m).
  -T<0-5>: Set timing template (higher is faster)
  --min-hostgroup/max-hostgroup <size>: Parallel host scan group sizes
  --min-parallelism/max-parallelism <numprobes>: Probe parallelization
  --min-rtt-timeout/max-rtt-timeout/initial-rtt-timeout <time>: Specifies
      probe round trip time.
  --max-retries <tries>: Caps number of port scan probe retransmissions.
  --host-timeout <time>: Give up on target after this long
  --scan-delay/--max-scan-delay <time>: Adjust delay between probes
  --min-rate <number>: Send packets no slower than <number> per second
  --max-rate <number>: Send packets no faster than <number> per second
OUTPUT:
  -oN/-oX/-oG <file>: Output scan in normal, XML, and Grepable format
  -oJ <file>: Output scan as one JSON document (leadline)
  -oA <basename>: Output in the three major formats at once
  -v: Increase verbosity level (use -vv or more for greater effect)
  -d: Increase debugging level (use -dd or more for greater effect)
  --reason: Display the reason a port is in a particular state
  --open: Only show open (or possibly open) ports
  --packet-trace: Show all packets sent and received
  --explain: Show the exchange that decided each port's state (leadline)
  --pcap <file>: Write every packet sent and received to a pcap file (leadline)
  --stats-every <time>: Print progress at this interval
LARGE AND LONG SCANS (leadline):
  --shards I/N --seed S: Scan the I-th of N disjoint parts of the hosts (same S on every part)
  --resume <file>: Continue an interrupted run from its XML (-oX) or JSON (-oJ) output
  --cluster tcp://HOST:PORT | local:N: Scan on a Dask scheduler's workers, or N local workers

SCAN HISTORY (leadline):
  --save: Record the run in the scan history (~/.local/share/leadline/scans.db, or LEADLINE_DB)
  --db <url>: Record it there instead: sqlite:///PATH or postgresql://USER@HOST/DB
  --diff-last: After the run, show what changed since the last run over the same targets
  leadline db hosts|list|history, leadline diff A B, leadline report RUN -o report.html
MISC:
  -6: Enable IPv6 scanning
  -A: Enable version detection, script scanning, and traceroute
  --traceroute: Trace hop path to each host (root)
  -V: Print version number
  -h: Print this help summary page.
PRACTICE LAB (root):
  leadline lab up       build a safe practice network in network namespaces
  leadline lab exec CMD run CMD (e.g. a scan) inside the lab's scanner namespace
  leadline lab shell    open a shell inside the lab
  leadline lab status   show what is running;  leadline lab down  remove it all
EXAMPLES:
  leadline -v -sT 198.18.1.10
  leadline -sn 198.18.1.0/24
  leadline -sT -p- --reason -oA course 198.18.1.10
"""
