# nbdboot-lib.sh: the NBD root command line grammar of nbdboot's static init
# (Sources/BootCore/NBDRoot.swift, docs/init.md), in POSIX sh for distribution
# initramfs images (initramfs-tools' scripts/local-top/nbdboot, dracut's 95nbdboot).
# Installed as /usr/share/nbdboot/nbdboot-lib.sh; the hooks copy it into the image.
# Sourced, never run. Functions set nbdboot_* variables and return 0, or set
# nbdboot_error (what is wrong, naming the parameter and value) and return 1.
# No bashisms: it runs under busybox ash, klibc sh and dash.
#
# Debian forms (scripts/local-top/nbd of nbd-client), with Debian's 2-field bug fixed:
#   nbdroot=HOST/NAME  HOST:PORT/NAME  HOST:/PATH (name keeps its /)  [V6]:PORT/NAME  [V6]/NAME
#   nbdroot=HOST,NAME  HOST,NAME,nbdN  /NAME  :PORT/NAME  dhcp,NAME (host from DHCP)
#   nbdroot=dhcp or nbdroot=   the whole value from DHCP option 17 (root-path)
#   nbdroot=nbd://HOST[:PORT]/NAME   the NBD URI form (nbd://[V6]:PORT/NAME too)
#   root=/dev/nbdN[pM]  nbddev=/dev/nbdN     device (default /dev/nbd0)
# dracut forms (dracut.cmdline(7), "NBD"), for nbdboot_parse_dracut:
#   root=nbd:HOST:PORT|NAME[:FSTYPE[:FLAGS[:OPTS]]]   netroot=nbd:...   (HOST may be [V6])

nbdboot_default_port=10809

# nbdboot_fail PARAM VALUE PROBLEM: sets nbdboot_error; returns 1.
nbdboot_fail() {
	nbdboot_error="$1=$2: $3"
	return 1
}

# nbdboot_is_port TEXT: a decimal port 1-65535.
nbdboot_is_port() {
	case "$1" in '' | *[!0-9]*) return 1 ;; esac
	[ "${#1}" -le 5 ] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# nbdboot_parse_device TEXT: /dev/nbdN, nbdN, /dev/nbdNpM or nbdNpM.
# Sets nbdboot_dev_index and nbdboot_dev_part (empty without a partition).
nbdboot_parse_device() {
	_d=${1#/dev/}
	case "$_d" in nbd*) _d=${_d#nbd} ;; *) return 1 ;; esac
	case "$_d" in
	*p*) nbdboot_dev_index=${_d%%p*}; nbdboot_dev_part=${_d#*p} ;;
	*) nbdboot_dev_index=$_d; nbdboot_dev_part= ;;
	esac
	case "$nbdboot_dev_index" in '' | *[!0-9]*) return 1 ;; esac
	[ "${#nbdboot_dev_index}" -le 5 ] || return 1
	case "$nbdboot_dev_part" in
	'') ;;
	*[!0-9]* | 0 | 0*) return 1 ;;
	*) [ "${#nbdboot_dev_part}" -le 3 ] && [ "$nbdboot_dev_part" -le 255 ] || return 1 ;;
	esac
}

# nbdboot_parse_server VALUE PARAM: a server value (nbdroot= or a DHCP root-path).
# Sets nbdboot_host (empty: from DHCP), nbdboot_port, nbdboot_name, nbdboot_field_dev
# (the comma form's third field, or empty).
nbdboot_parse_server() {
	_v=$1 _p=$2
	nbdboot_host= nbdboot_port=$nbdboot_default_port nbdboot_name= nbdboot_field_dev=
	_ex="e.g. $_p=10.0.2.2:10809/root or $_p=10.0.2.2,root"
	case "$_v" in
	nbds://* | nbd+unix://* | nbds+unix://*)
		nbdboot_fail "$_p" "$_v" "only nbd:// URIs are supported (no TLS, no Unix sockets); $_ex"
		return 1 ;;
	nbd://*)
		_r=${_v#nbd://}
		case "$_r" in */*) _auth=${_r%%/*}; nbdboot_name=${_r#*/} ;; *) _auth=$_r; nbdboot_name= ;; esac
		case "$nbdboot_name" in *%* | *\?* | *#*)
			nbdboot_fail "$_p" "$_v" "percent escapes and ?query/#fragment are not supported in the export name"
			return 1 ;;
		esac
		case "$_auth" in
		\[*\]) nbdboot_host=${_auth#[}; nbdboot_host=${nbdboot_host%]} ;;
		\[*\]:*) _port=${_auth##*]:}; nbdboot_host=${_auth%%]*}; nbdboot_host=${nbdboot_host#[}
			nbdboot_is_port "$_port" || { nbdboot_fail "$_p" "$_v" "the port \"$_port\" is not a number from 1 to 65535"; return 1; }
			nbdboot_port=$_port ;;
		\[*) nbdboot_fail "$_p" "$_v" "the IPv6 address has no closing ]"; return 1 ;;
		*:*) nbdboot_host=${_auth%%:*}; _port=${_auth#*:}
			nbdboot_is_port "$_port" || { nbdboot_fail "$_p" "$_v" "the port \"$_port\" is not a number from 1 to 65535"; return 1; }
			nbdboot_port=$_port ;;
		*) nbdboot_host=$_auth ;;
		esac
		[ -n "$nbdboot_host" ] || { nbdboot_fail "$_p" "$_v" "the URI names no host; e.g. $_p=nbd://10.0.2.2:10809/root"; return 1; }
		return 0 ;;
	\[*) ;;
	*,*)
		_f1=${_v%%,*} _rest=${_v#*,}
		case "$_rest" in
		*,*,*) nbdboot_fail "$_p" "$_v" "the comma form has more than 3 fields; it takes HOST,NAME or HOST,NAME,nbdN"; return 1 ;;
		*,*) nbdboot_name=${_rest%%,*}; _f3=${_rest#*,}
			nbdboot_parse_device "$_f3" && [ -z "$nbdboot_dev_part" ] ||
				{ nbdboot_fail "$_p" "$_v" "the third field \"$_f3\" is not an NBD device such as nbd0"; return 1; }
			nbdboot_field_dev=/dev/nbd$nbdboot_dev_index ;;
		*) nbdboot_name=$_rest ;;
		esac
		[ -n "$nbdboot_name" ] || { nbdboot_fail "$_p" "$_v" "the export name (second field) is empty"; return 1; }
		[ "$_f1" = dhcp ] || nbdboot_host=$_f1
		return 0 ;;
	esac
	# [HOST][:PORT]/NAME, HOST:/PATH, [V6]:PORT/NAME, [V6]/NAME
	case "$_v" in
	\[*)
		case "$_v" in *]*) ;; *) nbdboot_fail "$_p" "$_v" "the IPv6 address has no closing ]"; return 1 ;; esac
		nbdboot_host=${_v%%]*}; nbdboot_host=${nbdboot_host#[}
		[ -n "$nbdboot_host" ] || { nbdboot_fail "$_p" "$_v" "the IPv6 address between [ ] is empty"; return 1; }
		_rest=${_v#*]} ;;
	*)
		nbdboot_host=${_v%%[:/]*}
		_rest=${_v#"$nbdboot_host"} ;;
	esac
	case "$_rest" in
	:/*) nbdboot_name=${_rest#:} ;;   # HOST:/path keeps the leading slash (LTSP's convention)
	:*)
		_rest=${_rest#:}
		case "$_rest" in
		*/*) _port=${_rest%%/*}; nbdboot_name=${_rest#*/} ;;
		*) _port=$_rest; nbdboot_is_port "$_port" && { nbdboot_fail "$_p" "$_v" "there is no /NAME after the port"; return 1; } ;;
		esac
		nbdboot_is_port "$_port" || { nbdboot_fail "$_p" "$_v" "the port \"$_port\" is not a number from 1 to 65535"; return 1; }
		nbdboot_port=$_port ;;
	/*) nbdboot_name=${_rest#/} ;;
	*) nbdboot_fail "$_p" "$_v" "there is no export name: write HOST/NAME, HOST:PORT/NAME or HOST,NAME"; return 1 ;;
	esac
	[ -n "$nbdboot_name" ] || { nbdboot_fail "$_p" "$_v" "the export name after / is empty"; return 1; }
	[ "$nbdboot_host" = dhcp ] && nbdboot_host=
	return 0
}

# nbdboot_parse_cmdline "KERNEL COMMAND LINE": picks nbdroot=, nbddev= and root= (the last
# of each wins). Sets nbdboot_nbdroot, nbdboot_nbddev, nbdboot_root and nbdboot_wanted
# (yes when nbdroot= or nbddev= is present, as Debian's script decides).
nbdboot_parse_cmdline() {
	nbdboot_nbdroot= nbdboot_nbddev= nbdboot_root= nbdboot_wanted=
	_glob_off=; case $- in *f*) _glob_off=1 ;; esac
	set -f
	for _x in $1; do
		case "$_x" in
		nbdroot=*) nbdboot_nbdroot=${_x#nbdroot=}; nbdboot_wanted=yes ;;
		nbddev=*) nbdboot_nbddev=${_x#nbddev=}; nbdboot_wanted=yes ;;
		root=*) nbdboot_root=${_x#root=} ;;
		esac
	done
	[ -n "$_glob_off" ] || set +f
	return 0
}

# nbdboot_resolve ROOTSERVER ROOTPATH: after the network is up (initramfs-tools' ipconfig
# gives both; DHCP siaddr and option 17), works out the connection. Sets nbdboot_host,
# nbdboot_port, nbdboot_name, nbdboot_device (the whole device to connect) and
# nbdboot_mount_device (it, or its partition from root=/dev/nbdNpM).
nbdboot_resolve() {
	_server=$1 _rootpath=$2
	case "$nbdboot_nbdroot" in
	'' | dhcp)
		[ -n "$_rootpath" ] || { nbdboot_fail nbdroot "$nbdboot_nbdroot" "empty or dhcp means the DHCP root-path (option 17), but there is none; set option 17 on the DHCP server, or write e.g. nbdroot=10.0.2.2:10809/root"; return 1; }
		nbdboot_parse_server "$_rootpath" root-path || return 1 ;;
	*) nbdboot_parse_server "$nbdboot_nbdroot" nbdroot || return 1 ;;
	esac
	nbdboot_mount_device=${nbdboot_field_dev:-/dev/nbd0}
	if [ -n "$nbdboot_nbddev" ]; then
		nbdboot_parse_device "$nbdboot_nbddev" || { nbdboot_fail nbddev "$nbdboot_nbddev" "not an NBD device name; e.g. nbddev=/dev/nbd0"; return 1; }
		nbdboot_mount_device=$nbdboot_nbddev
	fi
	case "$nbdboot_root" in
	/dev/nbd*)
		nbdboot_parse_device "$nbdboot_root" || { nbdboot_fail root "$nbdboot_root" "not an NBD device or partition name; e.g. root=/dev/nbd0 or root=/dev/nbd0p1"; return 1; }
		nbdboot_mount_device=$nbdboot_root ;;
	esac
	nbdboot_parse_device "$nbdboot_mount_device"
	nbdboot_device=/dev/nbd$nbdboot_dev_index
	nbdboot_mount_device=$nbdboot_device${nbdboot_dev_part:+p$nbdboot_dev_part}
	if [ -z "$nbdboot_host" ]; then
		[ -n "$_server" ] && [ "$_server" != 0.0.0.0 ] || { nbdboot_fail nbdroot "$nbdboot_nbdroot" "the NBD server's address is left to DHCP, but no boot server is known (no DHCP siaddr or server id, no server field in ip=); write the server, e.g. nbdroot=10.0.2.2:10809/${nbdboot_name:-root}"; return 1; }
		nbdboot_host=$_server
	fi
	return 0
}

# nbdboot_parse_dracut VALUE [PARAM]: root=nbd:... or netroot=nbd:... (an nbd:// URI is accepted too).
# Sets nbdboot_host, nbdboot_port, nbdboot_name (empty: the server's default export),
# nbdboot_fstype (auto when not given), nbdboot_flags (mount options) and
# nbdboot_client_opts (bs=N -> -b N, timeout=N -> -t N, other items passed as they are:
# "-C,4" gives "-C 4", as in dracut's nbdroot.sh).
nbdboot_parse_dracut() {
	_v=$1 _p=${2:-root}
	nbdboot_fstype=auto nbdboot_flags= nbdboot_client_opts= nbdboot_host= nbdboot_port=$nbdboot_default_port nbdboot_name=
	case "$_v" in
	nbd://* | nbds://* | nbd+unix://*) nbdboot_parse_server "$_v" "$_p"; return ;;
	nbd:*) _r=${_v#nbd:} ;;
	*) nbdboot_fail "$_p" "$_v" "not an nbd: value; e.g. root=nbd:10.0.2.2:root"; return 1 ;;
	esac
	case "$_r" in
	\[*)
		case "$_r" in *]:*) ;; *) nbdboot_fail "$_p" "$_v" "the IPv6 address needs [ ] and a : after it; e.g. root=nbd:[fe80::1]:root"; return 1 ;; esac
		nbdboot_host=${_r%%]:*}; nbdboot_host=${nbdboot_host#[}; _r=${_r#*]:} ;;
	*:*) nbdboot_host=${_r%%:*}; _r=${_r#*:} ;;
	*) nbdboot_fail "$_p" "$_v" "the second field (port or export name) is missing; e.g. root=nbd:10.0.2.2:root"; return 1 ;;
	esac
	[ -n "$nbdboot_host" ] || { nbdboot_fail "$_p" "$_v" "the server is empty; e.g. root=nbd:10.0.2.2:root"; return 1; }
	_second=${_r%%:*}
	case "$_r" in *:*) _r=${_r#*:} ;; *) _r= ;; esac
	[ -n "$_second" ] || { nbdboot_fail "$_p" "$_v" "the second field (port or export name) is empty"; return 1; }
	case "$_second" in
	*[!0-9]*) nbdboot_name=$_second ;;
	*) nbdboot_is_port "$_second" || { nbdboot_fail "$_p" "$_v" "the port \"$_second\" is not a number from 1 to 65535"; return 1; }
		nbdboot_port=$_second ;;
	esac
	_fstype=${_r%%:*}; case "$_r" in *:*) _r=${_r#*:} ;; *) _r= ;; esac
	[ -n "$_fstype" ] && nbdboot_fstype=$_fstype
	nbdboot_flags=${_r%%:*}; case "$_r" in *:*) _opts=${_r#*:} ;; *) _opts= ;; esac
	_old_ifs=$IFS; IFS=,
	set -f
	for _o in $_opts; do
		case "$_o" in
		bs=*) _n=${_o#bs=}
			case "$_n" in 512 | 1024 | 2048 | 4096) ;; *) IFS=$_old_ifs; set +f; nbdboot_fail "$_p" "$_v" "bs=$_n: the block size is 512, 1024, 2048 or 4096"; return 1 ;; esac
			nbdboot_client_opts="$nbdboot_client_opts -b $_n" ;;
		timeout=*) _n=${_o#timeout=}
			case "$_n" in '' | *[!0-9]*) IFS=$_old_ifs; set +f; nbdboot_fail "$_p" "$_v" "timeout=$_n: seconds, a number"; return 1 ;; esac
			nbdboot_client_opts="$nbdboot_client_opts -t $_n" ;;
		'') ;;
		*) nbdboot_client_opts="$nbdboot_client_opts $_o" ;;
		esac
	done
	IFS=$_old_ifs
	set +f
	nbdboot_client_opts=${nbdboot_client_opts# }
	return 0
}

# nbdboot_client_args: the arguments for nbdboot's static nbd-client, which stays resident
# (-persist: it reconnects when the server comes back; Debian's 3.24 exits in netlink mode)
# and marks itself for systemd's shutdown (-systemd-mark: argv[0] starts with '@').
nbdboot_client_args() {
	printf '%s %s %s' "$nbdboot_host" "$nbdboot_port" "$nbdboot_device"
	[ -n "$nbdboot_name" ] && printf ' -N %s' "$nbdboot_name"
	printf ' -systemd-mark -persist\n'
}
