#!/usr/bin/env bash
# A private 4-host test cluster for the launcher tests, built from network namespaces.
#   cluster.sh up DIR     builds it (tearing down leftovers of a crashed run first), writes
#                         DIR/{id_ed25519,known_hosts,hostfile,ssh_config} and starts sshd on every host
#   cluster.sh down DIR   stops the sshds and removes every namespace and link it made
# Hosts rtl-h0..rtl-h3 have eth0 = 10.78.0.1..4/24 (sshd on ports 22 and 2222), joined by bridge
# br0 in namespace rtl-sw.
# The root namespace joins the bridge as 10.78.0.254 (link rtl-root), so ssh and the ranks'
# connections back to the launcher only ever reach addresses this script created.
# Needs root, iproute2 and openssh-server (/usr/sbin/sshd).
set -euo pipefail
cmd=${1:?usage: cluster.sh up|down DIR}
dir=${2:?usage: cluster.sh up|down DIR}
N=4
NET=10.78.0

down() {
  for ((i = 0; i < N; i++)); do
    ns=rtl-h$i
    if ip netns list | grep -qw "$ns"; then
      # Every process left in the namespace (sshd and anything a failed test left behind).
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  ip link del rtl-root 2>/dev/null || true
  ip netns del rtl-sw 2>/dev/null || true
}

if [[ $cmd == down ]]; then
  down
  exit 0
fi
[[ $cmd == up ]] || { echo "cluster.sh: unknown command '$cmd'" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "cluster.sh: needs root" >&2; exit 1; }
command -v ip >/dev/null || { echo "cluster.sh: needs iproute2 (ip)" >&2; exit 1; }
[[ -x /usr/sbin/sshd ]] || { echo "cluster.sh: needs openssh-server (/usr/sbin/sshd)" >&2; exit 1; }

down
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
rm -f "$dir"/id_ed25519* "$dir"/host_ed25519* "$dir"/wrong_ed25519*
ssh-keygen -q -t ed25519 -N '' -C ringtrain-test-client -f "$dir/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C ringtrain-test-wrong -f "$dir/wrong_ed25519"
ssh-keygen -q -t ed25519 -N '' -C ringtrain-test-host -f "$dir/host_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"

cat > "$dir/sshd_config" <<CONF
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 64
MaxSessions 64
LogLevel ERROR
CONF

ip netns add rtl-sw
ip netns exec rtl-sw ip link set lo up
ip netns exec rtl-sw ip link add br0 type bridge
ip netns exec rtl-sw ip link set br0 up

ip link add rtl-root type veth peer name rtl-up
ip link set rtl-up netns rtl-sw
ip netns exec rtl-sw ip link set rtl-up master br0
ip netns exec rtl-sw ip link set rtl-up up
ip addr add $NET.254/24 dev rtl-root
ip link set rtl-root up

: > "$dir/known_hosts"
: > "$dir/hostfile"
hostkey=$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")
for ((i = 0; i < N; i++)); do
  ns=rtl-h$i
  addr=$NET.$((i + 1))
  ip netns add $ns
  ip link add rtl-v$i type veth peer name rtl-s$i
  ip link set rtl-v$i netns $ns
  ip link set rtl-s$i netns rtl-sw
  ip netns exec rtl-sw ip link set rtl-s$i master br0
  ip netns exec rtl-sw ip link set rtl-s$i up
  ip netns exec $ns ip link set lo up
  ip netns exec $ns ip link set rtl-v$i name eth0
  ip netns exec $ns ip addr add $addr/24 dev eth0
  ip netns exec $ns ip link set eth0 up
  # Port 22 and 2222 (for --ssh-port); known_hosts names a non-22 port as [addr]:port.
  ip netns exec $ns /usr/sbin/sshd -f "$dir/sshd_config" -p 22 -p 2222 -o ListenAddress=$addr -o PidFile="$dir/sshd-$i.pid"
  echo "$addr $hostkey" >> "$dir/known_hosts"
  echo "[$addr]:2222 $hostkey" >> "$dir/known_hosts"
  echo "$addr slots=2" >> "$dir/hostfile"
done

cat > "$dir/ssh_config" <<CONF
IdentityFile $dir/id_ed25519
IdentitiesOnly yes
UserKnownHostsFile $dir/known_hosts
StrictHostKeyChecking yes
CONF

# Ready when every host accepts the test key (sshd daemonizes before it listens everywhere).
for ((i = 0; i < N; i++)); do
  addr=$NET.$((i + 1))
  ok=
  for ((t = 0; t < 50; t++)); do
    if ssh -F "$dir/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 root@$addr true 2>/dev/null; then ok=1; break; fi
    sleep 0.1
  done
  [[ -n $ok ]] || { echo "cluster.sh: sshd on $addr (namespace rtl-h$i) did not accept the test key" >&2; exit 1; }
done
