import CostdProtocol

/// libFuzzer's entry point: the frame decoder, the JSON-RPC decoder, the JSON parser and the
/// TOML reader on arbitrary bytes (see FuzzEntry).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequests(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzEntry.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

/// A debug build of an executable target renames `main` to `FuzzRequests_main` (so tests can
/// import it); with `-parse-as-library` there is no main of ours, so this one hands over to
/// libFuzzer's driver.
@_cdecl("FuzzRequests_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { start, size in fuzzRequests(start, size) }
}
