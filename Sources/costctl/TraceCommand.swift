import ArgumentParser
import CostdCore
import Foundation

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Workload traces for replay.",
        subcommands: [Synth.self]
    )

    /// A realistic synthetic workload, reproducible from its seed.
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic trace (JSON lines) for costctl replay.",
            discussion: """
                Knobs:
                  --requests N        lines to write
                  --task-mix SPEC     task:weight pairs, e.g. classification:3,reasoning:1 (weights need not sum to 1)
                  --distinct K        distinct prompts per task; each line draws one by a Zipf law, so a few
                                      prompts repeat a lot (what a cache lives on) and most are rare
                  --zipf S            the Zipf exponent: 0 = uniform, 1 = classic, higher = more repetition
                  --prompt-words W    mean prompt length in words (lengths vary from about W/3 to 2W)
                  --seed N            the same seed writes the same trace
                Output tokens depend on the task: a few for classification, hundreds for extraction,
                summaries and chat, about the prompt's length for translation, more for reasoning.
                """
        )
        @Option(help: "Lines (calls) in the trace.") var requests = 400
        @Option(name: .customLong("task-mix"), help: "task:weight pairs, comma-separated.")
        var taskMix = "classification:0.3,extraction:0.15,translation:0.1,summarization:0.15,reasoning:0.15,chat:0.15"
        @Option(help: "Distinct prompts the calls are drawn from.") var distinct = 100
        @Option(help: "The Zipf exponent of prompt popularity: 0 uniform, higher repeats more.") var zipf = 1.1
        @Option(name: .customLong("prompt-words"), help: "Mean prompt length in words.") var promptWords = 120
        @Option(help: "The same seed writes the same trace.") var seed: UInt64 = 42
        @Option(help: "Users the calls are spread over, comma-separated.") var users = "ann,bob,carol,dan"
        @Option(help: "Features the calls are spread over, comma-separated.") var features = "search,support,reports"
        @Option(help: "Write here instead of standard output.") var output: String?

        func run() throws {
            var mix: [(String, Double)] = []
            for pair in taskMix.split(separator: ",") {
                let parts = pair.split(separator: ":")
                guard parts.count == 2, let weight = Double(parts[1]), weight >= 0 else {
                    throw ValidationError("--task-mix wants task:weight pairs, not '\(pair)'")
                }
                mix.append((String(parts[0]), weight))
            }
            guard !mix.isEmpty, mix.reduce(0, { $0 + $1.1 }) > 0 else { throw ValidationError("--task-mix is empty") }
            guard requests >= 0, distinct >= 1, promptWords >= 1, zipf >= 0 else { throw ValidationError("bad knob values") }
            var generator = TraceGenerator(
                seed: seed, mix: mix, distinct: distinct, zipf: zipf, promptWords: promptWords,
                users: users.split(separator: ",").map(String.init), features: features.split(separator: ",").map(String.init)
            )
            var text = ""
            for _ in 0..<requests { text += generator.nextLine() + "\n" }
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                    throw ValidationError("cannot write \(output)")
                }
            } else {
                print(text, terminator: "")
            }
        }
    }
}

/// SplitMix64: small, fast, and the same numbers on every platform for a seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

struct TraceGenerator {
    var random: SplitMix64
    let mix: [(String, Double)]
    let distinct: Int
    let promptWords: Int
    let users: [String]
    let features: [String]
    let zipfCumulative: [Double]
    /// The prompts of each task, made on first use (so the same rank is the same prompt).
    var prompts: [String: [Int: (text: String, output: Int)]] = [:]

    static let words = Array(
        """
        the invoice customer order shipping refund account password report quarterly revenue growth team meeting \
        schedule delay product feature request bug crash login error payment card billing address delivery package \
        warehouse supplier contract renewal discount price plan upgrade support ticket agent response survey rating \
        review comment feedback question answer summary document policy privacy security update release version \
        server database latency timeout network storage backup restore migration cluster region service outage \
        incident postmortem action item owner deadline budget forecast estimate cost savings margin profit market \
        segment campaign email newsletter subscriber churn retention onboarding trial conversion funnel analytics \
        dashboard metric chart table column row value field record entry note task project milestone roadmap
        """.split(separator: " ").map(String.init)
    )

    init(seed: UInt64, mix: [(String, Double)], distinct: Int, zipf: Double, promptWords: Int, users: [String], features: [String]) {
        random = SplitMix64(state: seed)
        self.mix = mix
        self.distinct = distinct
        self.promptWords = promptWords
        self.users = users.isEmpty ? ["user"] : users
        self.features = features.isEmpty ? ["default"] : features
        var cumulative: [Double] = []
        var total = 0.0
        for rank in 1...distinct {
            total += 1 / pow(Double(rank), zipf)
            cumulative.append(total)
        }
        zipfCumulative = cumulative.map { $0 / total }
    }

    mutating func pickTask() -> String {
        let total = mix.reduce(0) { $0 + $1.1 }
        var draw = random.unit() * total
        for (task, weight) in mix {
            draw -= weight
            if draw < 0 { return task }
        }
        return mix[mix.count - 1].0
    }

    mutating func pickRank() -> Int {
        let draw = random.unit()
        var low = 0
        var high = zipfCumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if zipfCumulative[middle] < draw { low = middle + 1 } else { high = middle }
        }
        return low
    }

    mutating func sentence(words count: Int) -> String {
        var parts: [String] = []
        for index in 0..<count {
            var word = TraceGenerator.words[Int(random.next() % UInt64(TraceGenerator.words.count))]
            if index == 0 { word = word.prefix(1).uppercased() + word.dropFirst() }
            parts.append(word)
            if index % 12 == 11 { parts[parts.count - 1] += "." }
        }
        return parts.joined(separator: " ") + "."
    }

    /// Output tokens for a task; some run past the task's usual maxTokens (the caps matter).
    mutating func outputTokens(task: String, promptWords: Int) -> Int {
        func between(_ low: Int, _ high: Int) -> Int { low + Int(random.next() % UInt64(high - low + 1)) }
        switch task {
        case "classification": return between(1, 24)
        case "extraction": return between(40, 700)
        case "translation": return max(8, Int(Double(promptWords) * (1.1 + random.unit() * 0.5)))
        case "summarization": return between(60, 900)
        case "reasoning": return between(250, 1_600)
        default: return between(40, 1_300)
        }
    }

    mutating func prompt(task: String, rank: Int) -> (text: String, output: Int) {
        if let known = prompts[task]?[rank] { return known }
        let length = max(3, Int(Double(promptWords) * (0.35 + random.unit() * 1.65)))
        let instruction: String
        switch task {
        case "classification": instruction = "Classify the sentiment of this message as positive, negative or neutral:"
        case "extraction": instruction = "Extract every date, amount and person named in this text as JSON:"
        case "translation": instruction = "Translate into French:"
        case "summarization": instruction = "Summarize in three bullet points:"
        case "reasoning": instruction = "Think step by step and recommend what the team should do next:"
        default: instruction = "Answer the customer helpfully:"
        }
        let made = (instruction + " " + sentence(words: length), outputTokens(task: task, promptWords: length))
        prompts[task, default: [:]][rank] = made
        return made
    }

    mutating func nextLine() -> String {
        let task = pickTask()
        let (text, output) = prompt(task: task, rank: pickRank())
        let user = users[Int(random.next() % UInt64(users.count))]
        let feature = features[Int(random.next() % UInt64(features.count))]
        let line: JSONValue = [
            "task": .string(task), "prompt": .string(text), "outputTokens": .int(output), "user": .string(user),
            "feature": .string(feature),
        ]
        return line.jsonString
    }
}
