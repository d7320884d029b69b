import ArgumentParser
import CostdPOSIX
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A hostile client: floods a socket with malformed and heavy frames as fast as it will take them
/// (5,000-deep arrays, 100 KB prompts, garbage, now and then a length no server accepts), reading
/// and discarding whatever comes back, reconnecting when dropped. `run` starts several of these
/// against costd, then the same against a byte sink, and compares a good client's latency.
struct Flood: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Flood a socket with hostile frames (used by run).")

    @Option var socket: String
    @Option var seconds: Double = 5
    @Option(help: "mixed, malformed (no valid frame) or heavy (only valid 100 KB prompts)") var mix: String = "mixed"

    static let frames: [[UInt8]] = {
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        let bigPrompt = String(repeating: "lorem ipsum ", count: 100_000 / 12)
        let heavy = #"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"gpt-4o-mini","prompt":"\#(bigPrompt)"}}"#
        let garbage = (0..<4_096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let garbageFrame = [UInt8(0), 0, 0x10, 0] + garbage
        let notJSON = Requests.frame(String(repeating: "x", count: 2_000))
        return [Requests.frame(deep), Requests.frame(heavy), garbageFrame, notJSON, Requests.frame(deep), garbageFrame]
    }()

    var chosenFrames: [[UInt8]] {
        switch mix {
        case "malformed": Flood.frames.enumerated().filter { $0.offset != 1 }.map(\.element)
        case "heavy": [Flood.frames[1]]
        default: Flood.frames
        }
    }

    /// A length prefix past any limit: the server answers with an error and closes.
    static let oversize: [UInt8] = [0x7F, 0xFF, 0xFF, 0xFF]

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var sent = 0
        let frames = chosenFrames
        while DispatchTime.now().uptimeNanoseconds < deadline {
            guard let fd = try? UnixSocket.connect(socket) else { usleep(1_000); continue }
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            var output: [UInt8] = []
            var offset = 0
            var open = true
            while open && DispatchTime.now().uptimeNanoseconds < deadline {
                if offset == output.count {
                    sent += 1
                    output = sent % 500 == 0 ? Flood.oversize : frames[sent % frames.count]
                    offset = 0
                }
                var fds = pollfd(fd: fd, events: Int16(POLLIN | POLLOUT), revents: 0)
                guard poll(&fds, 1, 100) > 0 else { continue }
                if fds.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count == 0 || (count < 0 && errno != EAGAIN) { open = false }
                }
                if open && fds.revents & Int16(POLLOUT) != 0 {
                    let written = output.withUnsafeBytes { write(fd, $0.baseAddress! + offset, output.count - offset) }
                    if written > 0 { offset += written } else if written < 0 && errno != EAGAIN { open = false }
                }
            }
            close(fd)
        }
    }
}

/// Processes of ``Flood`` for the length of one measurement.
struct Flooders {
    var processes: [Process] = []

    init(bench: String, socket: String, count: Int, seconds: Double, mix: String = "mixed") throws {
        for _ in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bench)
            process.arguments = ["flood", "--socket", socket, "--seconds", "\(seconds)", "--mix", mix]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            processes.append(process)
        }
    }

    func stop() {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
    }
}
