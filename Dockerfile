# qroam daemons on Debian 12, in two stages.
#
#   docker compose build        (or: docker build -t qroam:latest .)
#
# Both stages run apt-get.  Where the build's default network cannot reach
# the Debian archive, build on the host's network
# (docker build --network host -t qroam:latest .) or use a local mirror;
# debian:12 and debian:12-slim must be pullable or already loaded.
#
# The build stage compiles with the build packages of scripts/deps.sh and
# installs into /out; the runtime stage is debian:12-slim with only the
# shared libraries the programs link and the installed binaries, run as the
# unprivileged user qroam (uid/gid 10001, which deploy/compose/pki.sh gives
# read access to the testbed keys).

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	gcc make libc6-dev pkg-config libevent-dev libssl-dev openssl \
	libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler \
	libjansson-dev libsystemd-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make -j"$(nproc)" all \
 && make install DESTDIR=/out PREFIX=/usr

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	libevent-2.1-7 libevent-openssl-2.1-7 libssl3 libsqlite3-0 \
	libprotobuf-c1 libjansson4 libsystemd0 libpq5 \
 && rm -rf /var/lib/apt/lists/*
# make install puts the daemons in /usr/sbin and qroamctl in /usr/bin.
COPY --from=build /out/usr/sbin/ /usr/sbin/
COPY --from=build /out/usr/bin/ /usr/bin/
RUN groupadd --system --gid 10001 qroam \
 && useradd --system --uid 10001 --gid qroam --no-create-home \
	--home-dir /var/lib/qroam --shell /usr/sbin/nologin qroam \
 && install -d -o qroam -g qroam -m 0750 /var/lib/qroam \
 && install -d -m 0755 /etc/qroam
USER qroam:qroam
WORKDIR /var/lib/qroam
# Each compose service names its daemon and configuration.
CMD ["tspd", "-f", "/etc/qroam/tspd.conf"]
