import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Process {
    /// Runs to completion with stdout and stderr in a temporary file; returns the exit status and
    /// the output. A file rather than a `Pipe`: with many tests starting processes at once,
    /// Foundation's pipe handling on Linux can close a descriptor twice and crash
    /// `readDataToEndOfFile` in an unrelated test (swiftlang/swift#57827).
    func runCapturingOutput() throws -> (status: Int32, output: String) {
        var template = Array((NSTemporaryDirectory() + "/costd-output-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        let path = String(cString: template)
        defer { unlink(path) }
        let output = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        standardOutput = output
        standardError = output
        try run()
        waitUntilExit()
        let captured = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return (terminationStatus, captured)
    }
}
