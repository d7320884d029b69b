import CostdCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// The tokenizer vocabularies (`<data dir>/tokenizers/<encoding>.tiktoken`), each loaded on a
/// thread of its own the first time it is needed: start-up stays fast, an idle daemon does not
/// hold the ~10 MB tables of an encoding nobody uses, and no event loop ever parses a vocabulary.
/// Calls that need an encoding while it loads wait for it.
public final class Tokenizers: Sendable {
    private enum State: Sendable {
        case unloaded
        case loading([EventLoopPromise<BPEEncoding>])
        case loaded(BPEEncoding)
        case failed(String)
    }

    public static let directoryName = "tokenizers"

    private let directory: String?
    private let logger: Logger
    private let states: Mutex<[String: State]>

    /// `dataDirectory` holds `tokenizers/`; nil means no tokenizer data is installed.
    public init(dataDirectory: String?, logger: Logger) {
        self.directory = dataDirectory.map { $0 + "/" + Tokenizers.directoryName }
        self.logger = logger
        var states: [String: State] = [:]
        for spec in EncodingSpec.all { states[spec.name] = .unloaded }
        self.states = Mutex(states)
    }

    /// Starts loading `name` in the background unless it is loading or loaded.
    private func loadInBackground(_ spec: EncodingSpec) {
        let thread = Thread { [self] in load(spec) }
        thread.name = "costd-tokenizer"
        thread.start()
    }

    private func load(_ spec: EncodingSpec) {
        let state: State
        if let directory {
            let path = directory + "/" + spec.vocabularyFileName
            do {
                guard let bytes = try FileIO.readAll(path) else {
                    throw ConfigError("\(path) is missing; run scripts/fetch-vocab \(directory)")
                }
                // The install step verified the file against tiktoken's hash; parsing checks its shape.
                state = .loaded(try BPEEncoding(spec: spec, vocabulary: bytes, verifyHash: false))
            } catch {
                state = .failed("\(error)")
            }
        } else {
            state = .failed("no tokenizer data is installed (see --data-dir and scripts/fetch-vocab)")
        }
        let waiting = states.withLock { states -> [EventLoopPromise<BPEEncoding>] in
            defer { states[spec.name] = state }
            if case .loading(let promises) = states[spec.name] { return promises }
            return []
        }
        switch state {
        case .loaded(let encoding):
            logger.info("Loaded tokenizer", metadata: ["encoding": "\(spec.name)", "tokens": "\(encoding.vocabularySize)"])
            for promise in waiting { promise.succeed(encoding) }
        case .failed(let reason):
            logger.warning("Tokenizer unavailable; token counts are estimated", metadata: ["encoding": "\(spec.name)", "reason": "\(reason)"])
            for promise in waiting { promise.fail(TokenizerUnavailable(encoding: spec.name, reason: reason)) }
        case .loading, .unloaded:
            break
        }
    }

    /// The encoding if it is loaded now (for best-effort exact counts on a hot path); asking
    /// starts loading it for the next time.
    public func loaded(_ name: String) -> BPEEncoding? {
        let (state, start) = states.withLock { states -> (State?, Bool) in
            let state = states[name]
            if case .unloaded? = state {
                states[name] = .loading([])
                return (state, true)
            }
            return (state, false)
        }
        if start, let spec = EncodingSpec.named(name) { loadInBackground(spec) }
        if case .loaded(let encoding)? = state { return encoding }
        return nil
    }

    /// The encoding, once it is loaded.
    public func encoding(_ name: String, on eventLoop: any EventLoop) -> EventLoopFuture<BPEEncoding> {
        var start = false
        let future = states.withLock { states -> EventLoopFuture<BPEEncoding> in
            if case .unloaded? = states[name] {
                states[name] = .loading([])
                start = true
            }
            switch states[name] {
            case .unloaded?:
                fatalError("unreachable: marked loading above")
            case .loaded(let encoding)?:
                return eventLoop.makeSucceededFuture(encoding)
            case .failed(let reason)?:
                return eventLoop.makeFailedFuture(TokenizerUnavailable(encoding: name, reason: reason))
            case .loading(var promises)?:
                let promise = eventLoop.makePromise(of: BPEEncoding.self)
                promises.append(promise)
                states[name] = .loading(promises)
                return promise.futureResult
            case nil:
                return eventLoop.makeFailedFuture(TokenizerUnavailable(encoding: name, reason: "unknown encoding"))
            }
        }
        if start, let spec = EncodingSpec.named(name) { loadInBackground(spec) }
        return future
    }
}

public struct TokenizerUnavailable: Error, Sendable, CustomStringConvertible {
    public var encoding: String
    public var reason: String
    public var description: String { "tokenizer \(encoding) is unavailable: \(reason)" }
}
