import Glibc

/// The `type` argument of `socket(2)`, spelt out once.
///
/// Glibc declares `SOCK_RAW`, `SOCK_DGRAM`, `SOCK_CLOEXEC` and `SOCK_NONBLOCK` as members of an
/// enum in `<bits/socket_type.h>`, and which Clang module ends up owning that header depends on
/// the order a build happens to import them in: in some fresh builds the names were not found
/// from files that import Glibc alone. The values are Linux's ABI (the flags are `O_CLOEXEC` and
/// `O_NONBLOCK`, as `socket(2)` documents), so they are written here instead.
public enum SocketType {
    public static let stream: Int32 = 1
    public static let datagram: Int32 = 2
    public static let raw: Int32 = 3
    public static let closeOnExec = Int32(O_CLOEXEC)
    public static let nonblocking = Int32(O_NONBLOCK)
}
