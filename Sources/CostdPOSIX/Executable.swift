#if canImport(Glibc)
import Glibc
#endif

public enum Executable {
    /// The running binary's absolute path, symlinks resolved (`/proc/self/exe`). `argv[0]` is
    /// not enough: a binary started from `$PATH` sees only its bare name there.
    public static func currentPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
