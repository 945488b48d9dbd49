# qroam daemons on Debian 12: build stage, then a slim runtime stage.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
	gcc make libc6-dev pkg-config libevent-dev libssl-dev libsqlite3-dev \
	libprotobuf-c-dev protobuf-c-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make all && make install PREFIX=/usr DESTDIR=/out

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
	libevent-2.1-7 libevent-openssl-2.1-7 libssl3 libsqlite3-0 \
	libprotobuf-c1 openssl && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/ /usr/bin/
RUN useradd --system --home-dir /var/lib/qroam --create-home qroam
USER qroam
WORKDIR /var/lib/qroam
