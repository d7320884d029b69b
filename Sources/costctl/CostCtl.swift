import ArgumentParser
import CostdClient
import CostdCore
import Foundation

/// Exit codes a script can branch on.
enum ExitStatus: Int32 {
    case success = 0
    /// A negative answer: a cache miss, a budget exceeded (-32000).
    case negative = 1
    case usage = 2
    case unreachable = 3
    /// The daemon answered with a JSON-RPC error.
    case rpcError = 4
}

@main
struct CostCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "costctl",
        abstract: "Talk to the costd daemon: route, cache, record and report LLM spend.",
        discussion: """
            Exit status (the same for clients/shell/costd.sh; README, "Exit status"): 0 success,
            1 a negative answer (a cache miss, a budget exceeded), 2 bad usage, 3 costd unreachable
            or its answer cut short, 4 costd answered with another error.
            """,
        version: CostdVersion.current,
        subcommands: [
            Ping.self, Route.self, Get.self, Set.self, Record.self, Report.self, Budget.self, Estimate.self, Tokens.self,
            Replay.self, Trace.self, Delete.self, Flush.self, Alerts.self, Call.self,
        ]
    )

    /// Options shared by every subcommand may also come before it (`costctl --socket S ping`).
    static func hoistingSharedOptions(_ arguments: [String]) -> [String] {
        let withValue: Swift.Set<String> = ["--socket", "--timeout"]
        let flags: Swift.Set<String> = ["--json"]
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if withValue.contains(argument), index + 1 < arguments.count {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else if withValue.contains(name) || flags.contains(argument) {
                leading.append(argument)
                index += 1
            } else {
                break
            }
        }
        guard !leading.isEmpty, index < arguments.count else { return arguments }
        // After everything else, so that nested subcommands (`budget check`) still parse.
        let rest = Array(arguments[index...])
        if let separator = rest.firstIndex(of: "--") {
            return Array(rest[..<separator]) + leading + Array(rest[separator...])
        }
        return rest + leading
    }

    static func main() {
        do {
            var command = try parseAsRoot(hoistingSharedOptions(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let error as ClientError {
            FileHandle.standardError.write(Data("costctl: \(error)\n".utf8))
            switch error {
            case .unreachable, .connectionLost: Foundation.exit(ExitStatus.unreachable.rawValue)
            // -32000 is "budget exceeded" (docs/PROTOCOL.md; CostdProtocol's RPCError.budgetExceededCode,
            // a module costctl does not link): a negative answer, not a failure.
            case .rpc(let code, _, _) where code == -32000: Foundation.exit(ExitStatus.negative.rawValue)
            case .rpc, .protocolViolation: Foundation.exit(ExitStatus.rpcError.rawValue)
            }
        } catch let exit as NegativeAnswer {
            Foundation.exit(exit.status.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data("costctl: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(code == .validationFailure ? ExitStatus.usage.rawValue : code.rawValue)
        }
    }
}

/// Ends a command with a status other than success, after it printed its answer.
struct NegativeAnswer: Error {
    var status: ExitStatus = .negative
}

struct ClientOptions: ParsableArguments {
    @Option(help: "The costd socket (default: $COSTD_SOCKET, $XDG_RUNTIME_DIR/costd.sock, /run/costd/costd.sock).")
    var socket: String?

    @Flag(help: "Print the daemon's JSON result as it is, for scripts and jq.")
    var json = false

    @Option(help: "Seconds to wait for an answer.")
    var timeout: Double = 30

    var socketPath: String {
        socket ?? DefaultPaths.socket(environment: ProcessInfo.processInfo.environment)
    }

    func connect() throws -> CostdConnection {
        try CostdConnection(path: socketPath, timeoutSeconds: timeout)
    }

    /// Calls the daemon and prints the raw result with `--json`, or hands it to `human`.
    func call(_ method: String, _ params: JSONValue, human: (JSONValue) throws -> Void) throws {
        let result = try connect().call(method, params)
        if json {
            print(result.jsonString)
        } else {
            try human(result)
        }
    }
}

/// Reads a command-line argument as JSON when asked, else as a string.
func argumentValue(_ text: String, asJSON: Bool) throws -> JSONValue {
    guard asJSON else { return .string(text) }
    do {
        return try JSONParser.parse(text)
    } catch {
        throw ValidationError("not valid JSON: \(error)")
    }
}

func usd(_ value: JSONValue?) -> String {
    Format.usd(value)
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that costd is up.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try options.call("ping", [:]) { result in
            let version = result["version"]?.stringValue ?? "?"
            let store = result["store"]?.stringValue ?? "?"
            print("costd \(version) is up (\(store) store, socket \(options.socketPath))")
        }
    }
}

struct Route: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask which model a task should use.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The task, e.g. classification, extraction, translation, summarization.") var task: String?
    @Option(help: "The prompt (its size can move the request up a tier).") var prompt: String?
    @Option(name: .customLong("input-tokens"), help: "The prompt's size in tokens, when known.") var inputTokens: Int?
    @Option(help: "Who the call is for (budgets and reports by user).") var user: String?
    @Option(help: "What the call is for (budgets and reports by feature).") var feature: String?
    @Option(help: "The model the call would use without costd (routing savings are measured from it; default: baseline_model).")
    var model: String?

    func run() throws {
        var params = JSONObject()
        if let task { params.append("task", .string(task)) }
        if let model { params.append("model", .string(model)) }
        if let prompt { params.append("prompt", .string(prompt)) }
        if let inputTokens { params.append("inputTokens", .int(inputTokens)) }
        if let user { params.append("user", .string(user)) }
        if let feature { params.append("feature", .string(feature)) }
        try options.call("route", .object(params)) { result in
            let model = result["model"]?.stringValue ?? "?"
            let tier = result["tier"]?.stringValue ?? "?"
            let reason = result["reason"]?.stringValue ?? "?"
            let maxTokens = result["maxTokens"]?.numberValue?.text ?? "?"
            print("\(model)  (tier \(tier), reason \(reason), maxTokens \(maxTokens))")
            if let detail = result["detail"]?.stringValue { print("  \(detail)") }
            if let routeId = result["routeId"]?.stringValue { print("  routeId \(routeId) (pass it to record --route-id)") }
        }
    }
}

struct CacheKeyOptions: ParsableArguments {
    @Option(help: "The model the answer is for.") var model: String
    @Option(help: "Cache namespace.") var namespace: String?
    @Flag(name: .customLong("json-prompt"), help: "Read PROMPT as JSON (default: a string).") var jsonPrompt = false

    func params(prompt: String) throws -> JSONObject {
        var params = JSONObject()
        params.append("model", .string(model))
        params.append("prompt", try argumentValue(prompt, asJSON: jsonPrompt))
        if let namespace { params.append("namespace", .string(namespace)) }
        return params
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look up a cached answer; prints it and exits 0 on a hit, exits 1 on a miss."
    )
    @OptionGroup var options: ClientOptions
    @OptionGroup var key: CacheKeyOptions
    @Argument(help: "The prompt.") var prompt: String

    func run() throws {
        let result = try options.connect().call("cacheGet", .object(try key.params(prompt: prompt)))
        let hit = result["hit"]?.boolValue ?? false
        if options.json {
            print(result.jsonString)
        } else if hit, let value = result["value"] {
            // A string value prints as its text; anything else as JSON.
            print(value.stringValue ?? value.jsonString)
        } else {
            FileHandle.standardError.write(Data("miss\n".utf8))
        }
        if !hit { throw NegativeAnswer() }
    }
}

struct Set: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Store an answer in the cache.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var key: CacheKeyOptions
    @Option(help: "Seconds to keep it (default: the daemon's, 3600).") var ttl: Double?
    @Flag(name: .customLong("json-value"), help: "Read VALUE as JSON (default: a string).") var jsonValue = false
    @Argument(help: "The prompt.") var prompt: String
    @Argument(help: "The answer to store.") var value: String

    func run() throws {
        var params = try key.params(prompt: prompt)
        params.append("value", try argumentValue(value, asJSON: jsonValue))
        if let ttl, let number = JSONNumber(ttl) { params.append("ttl", .number(number)) }
        try options.call("cacheSet", .object(params)) { result in
            if result["stored"]?.boolValue == true {
                print("stored (ttl \(result["ttl"]?.numberValue?.text ?? "?") s)")
            } else {
                print("not stored: \(result["reason"]?.stringValue ?? "?")")
                throw NegativeAnswer()
            }
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove one cached answer.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var key: CacheKeyOptions
    @Argument(help: "The prompt.") var prompt: String

    func run() throws {
        try options.call("cacheDelete", .object(try key.params(prompt: prompt))) { result in
            print(result["deleted"]?.boolValue == true ? "deleted" : "no such entry")
        }
    }
}

struct Flush: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove every cached answer (of one namespace).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only this namespace.") var namespace: String?

    func run() throws {
        var params = JSONObject()
        if let namespace { params.append("namespace", .string(namespace)) }
        try options.call("cacheFlush", .object(params)) { result in
            print("flushed \(result["flushed"]?.numberValue?.text ?? "?") entries")
        }
    }
}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record the usage of one LLM call.")
    @OptionGroup var options: ClientOptions
    @Option(help: "The model the call used, as priced (gpt-4o, claude-sonnet-4, ...).") var model: String
    @Option(name: .customLong("input-tokens"), help: "Prompt tokens the provider billed.") var inputTokens: Int?
    @Option(name: .customLong("output-tokens"), help: "Completion tokens the provider billed.") var outputTokens: Int?
    @Option(name: .customLong("cached-input-tokens"), help: "Of the prompt tokens, those the provider served from its prompt cache.")
    var cachedInputTokens: Int?
    @Option(help: "Images generated (image models).") var images: Int?
    @Option(name: .customLong("image-quality"), help: "Quality of the generated images: low, medium or high.") var imageQuality: String?
    @Flag(help: "The call went through the provider's batch API (priced at its batch rate).") var batch = false
    @Flag(help: "The call was avoided by a cache hit: count it as savings.") var cached = false
    @Option(help: "Who the call was for (budgets and reports by user).") var user: String?
    @Option(help: "What the call was for (budgets and reports by feature).") var feature: String?
    @Option(name: .customLong("cost-usd"), help: "The cost, when the daemon should not price it.") var costUsd: String?
    @Option(name: .customLong("record-id"), help: "An id that makes retries count once.") var recordId: String?
    @Option(name: .customLong("route-id"), help: "The routeId route gave for this call: claims its routing saving.")
    var routeId: String?

    func run() throws {
        var params = JSONObject()
        params.append("model", .string(model))
        if let inputTokens { params.append("inputTokens", .int(inputTokens)) }
        if let outputTokens { params.append("outputTokens", .int(outputTokens)) }
        if let cachedInputTokens { params.append("cachedInputTokens", .int(cachedInputTokens)) }
        if let images { params.append("images", .int(images)) }
        if let imageQuality { params.append("imageQuality", .string(imageQuality)) }
        if batch { params.append("batch", true) }
        if cached { params.append("cached", true) }
        if let user { params.append("user", .string(user)) }
        if let feature { params.append("feature", .string(feature)) }
        if let costUsd {
            guard case .number(let number)? = try? JSONParser.parse(costUsd) else {
                throw ValidationError("--cost-usd must be a number")
            }
            params.append("costUsd", .number(number))
        }
        if let recordId { params.append("recordId", .string(recordId)) }
        if let routeId { params.append("routeId", .string(routeId)) }
        try options.call("record", .object(params)) { result in
            var line = "recorded \(usd(result["costUsd"]))"
            if cached { line = "recorded a cache hit, saved \(usd(result["savedUsd"]))" }
            if result["routingSavedUsd"] != nil { line += ", routing saved \(usd(result["routingSavedUsd"]))" }
            if let ignored = result["routeIgnored"]?.stringValue { line += " (route not claimed: \(ignored))" }
            if result["duplicate"]?.boolValue == true { line += " (duplicate recordId: not counted again)" }
            print(line)
            if let day = result["day"] {
                print("  today: \(usd(day["spentUsd"])) spent, \(usd(day["remainingUsd"])) left of \(usd(day["budgetUsd"]))")
            }
            for alert in result["alerts"]?.arrayValue ?? [] {
                print("  ALERT: \(alert["scope"]?.stringValue ?? "?") budget \(alert["level"]?.stringValue ?? "?"): \(usd(alert["spentUsd"])) of \(usd(alert["budgetUsd"]))")
            }
        }
    }
}

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Estimate daily and monthly cost of a workload.")
    @OptionGroup var options: ClientOptions
    @Option(help: "The model to price.") var model: String
    @Option(name: .customLong("daily-requests"), help: "Calls per day.") var dailyRequests: Double
    @Option(name: .customLong("avg-input-tokens"), help: "Mean prompt tokens per call.") var avgInputTokens: Double
    @Option(name: .customLong("avg-output-tokens"), help: "Mean completion tokens per call.") var avgOutputTokens: Double
    @Option(help: "Days in the longer period (default 30).") var days: Int?

    func run() throws {
        var params = JSONObject()
        params.append("model", .string(model))
        params.append("dailyRequests", .number(JSONNumber(dailyRequests) ?? JSONNumber(0)))
        params.append("avgInputTokens", .number(JSONNumber(avgInputTokens) ?? JSONNumber(0)))
        params.append("avgOutputTokens", .number(JSONNumber(avgOutputTokens) ?? JSONNumber(0)))
        if let days { params.append("days", .int(days)) }
        try options.call("estimate", .object(params)) { result in
            print("\(model): \(usd(result["perRequestUsd"])) per request, \(usd(result["dailyUsd"])) per day, \(usd(result["monthlyUsd"])) per \(result["days"]?.numberValue?.text ?? "30") days")
        }
    }
}

struct Budget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Budgets at a glance.",
        subcommands: [Check.self],
        defaultSubcommand: Check.self
    )

    /// Lists every budget (the host's and each `[[budgets]]` entry) with where it stands.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the budgets (the host's and each [[budgets]] entry) with today's and this month's spend; exit 0 while every one has room, 1 once one is exceeded (for scripts and cron jobs)."
        )
        @OptionGroup var options: ClientOptions
        @Option(help: "Exit 1 already at this fraction of a budget (e.g. 0.8).") var warnAt: Double?

        func run() throws {
            let connection = try options.connect()
            var exceeded = false
            var lines: [String] = []
            var json = JSONObject()
            for period in ["day", "month"] {
                let report = try connection.call("report", ["period": .string(period)])
                let spent = Format.dollars(report["totalCostUsd"])
                let status: String
                if let budget = report["budgetUsd"]?.numberValue?.double {
                    let fraction = budget > 0 ? spent / budget : (spent > 0 ? .infinity : 0)
                    let over = fraction >= 1 || (warnAt.map { fraction >= $0 } ?? false)
                    exceeded = exceeded || over
                    status = over ? (fraction >= 1 ? "exceeded" : "warning") : "ok"
                    lines.append("\(period): \(Format.usd(report["totalCostUsd"])) of \(Format.usd(report["budgetUsd"])) (\(Format.percent(fraction))) \(status)")
                } else {
                    status = "none"
                    lines.append("\(period): \(Format.usd(report["totalCostUsd"])), no budget")
                }
                json.append(period, ["status": .string(status), "spentUsd": report["totalCostUsd"] ?? nil, "budgetUsd": report["budgetUsd"] ?? nil])
            }
            // The scoped budgets: the report's standings of today and this month.
            let scoped = (try connection.call("report", [:])["budgets"]?.arrayValue ?? []).filter { $0["scope"]?.objectValue?.members.isEmpty == false }
            for standing in scoped {
                let spent = Format.dollars(standing["spentUsd"])
                let limit = Format.dollars(standing["budgetUsd"])
                let fraction = limit > 0 ? spent / limit : (spent > 0 ? .infinity : 0)
                let over = fraction >= 1 || (warnAt.map { fraction >= $0 } ?? false)
                exceeded = exceeded || over
                let scope = (standing["scope"]?.objectValue?.members ?? []).map { "\($0.key)=\($0.value.stringValue ?? "")" }.joined(separator: " ")
                let hard = standing["hard"]?.boolValue == true ? " hard" : ""
                lines.append(
                    "\(scope) \(standing["period"]?.stringValue ?? "?"): \(Format.usd(standing["spentUsd"])) of \(Format.usd(standing["budgetUsd"]))\(hard) (\(Format.percent(fraction))) \(standing["state"]?.stringValue ?? "?")")
            }
            json.append("budgets", .array(scoped))
            print(options.json ? JSONValue.object(json).jsonString : lines.joined(separator: "\n"))
            if exceeded { throw NegativeAnswer() }
        }
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Call any method with JSON params; prints the JSON result.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The JSON-RPC method (ping, route, cacheGet, record, report, ...; see docs/PROTOCOL.md).") var method: String
    @Argument(help: "Params as a JSON object.") var params: String = "{}"

    func run() throws {
        let value = try argumentValue(params, asJSON: true)
        print(try options.connect().call(method, value).jsonString)
    }
}
