import CostdCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// The tokenizer vocabularies (`<data dir>/tokenizers/<encoding>.tiktoken`), loaded on a
/// thread of their own right after start, so that start-up stays fast and no event loop parses
/// 4 MB of vocabulary. Calls that need an encoding before it is loaded wait for it.
public final class Tokenizers: Sendable {
    private enum State: Sendable {
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
        for spec in EncodingSpec.all { states[spec.name] = .loading([]) }
        self.states = Mutex(states)
    }

    /// Loads every encoding in the background.
    public func startLoading() {
        let thread = Thread { [self] in
            for spec in EncodingSpec.all { load(spec) }
        }
        thread.name = "costd-tokenizers"
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
        case .loading:
            break
        }
    }

    /// The encoding if it is loaded now (for best-effort exact counts on a hot path).
    public func loaded(_ name: String) -> BPEEncoding? {
        if case .loaded(let encoding)? = states.withLock({ $0[name] }) { return encoding }
        return nil
    }

    /// The encoding, once it is loaded.
    public func encoding(_ name: String, on eventLoop: any EventLoop) -> EventLoopFuture<BPEEncoding> {
        states.withLock { states -> EventLoopFuture<BPEEncoding> in
            switch states[name] {
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
    }
}

public struct TokenizerUnavailable: Error, Sendable, CustomStringConvertible {
    public var encoding: String
    public var reason: String
    public var description: String { "tokenizer \(encoding) is unavailable: \(reason)" }
}
