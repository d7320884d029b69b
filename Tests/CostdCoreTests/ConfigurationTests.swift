import Testing

@testable import CostdCore

@Suite struct TOMLParserTests {
    @Test func parsesTheSubsetConfigsUse() throws {
        let value = try TOMLParser.parse(
            #"""
            # comment
            title = "costd" # trailing
            port = 1_000
            hex = 0xff
            ratio = 0.8
            on = true
            list = [1, 2,
              3,]  # multi-line array
            inline = { a = 1, b.c = "x" }
            literal = 'C:\path'
            multi = """
            one \
              two"""

            [a.b]
            x = 1
            "quoted key" = 2

            [[tiers]]
            name = "simple"
            [[tiers]]
            name = "complex"
            """#
        )
        #expect(value["title"] == "costd")
        #expect(value["port"] == 1000)
        #expect(value["hex"] == 255)
        #expect(value["ratio"]?.numberValue?.text == "0.8")
        #expect(value["on"] == true)
        #expect(value["list"] == [1, 2, 3])
        #expect(value["inline"]?["b"]?["c"] == "x")
        #expect(value["literal"] == #"C:\path"#)
        #expect(value["multi"] == "one two")
        #expect(value["a"]?["b"]?["quoted key"] == 2)
        #expect(value["tiers"]?.arrayValue?.map { $0["name"] } == ["simple", "complex"])
    }

    @Test(arguments: ["a = ", "a = 1\na = 2", "[t]\n[t]", "a = \"unterminated", "a = 01", "a = inf", "a = [1 2]", "= 1"])
    func rejectsBrokenDocuments(_ text: String) {
        #expect(throws: ConfigError.self) { try TOMLParser.parse(text) }
    }

    @Test func errorsNameTheLine() {
        let error = #expect(throws: ConfigError.self) { try TOMLParser.parse("a = 1\nb = 2\nc = ") }
        #expect(error?.message.hasPrefix("line 3") == true)
    }

    /// Found by the fuzzer: without a bound, 100 000 `[` overflowed the stack.
    @Test func nestingIsBoundedInsteadOfOverflowingTheStack() throws {
        let shallow = try TOMLParser.parse("a = " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32))
        #expect(shallow["a"]?.arrayValue?.count == 1)
        for opener in ["[", "{ b = "] {
            let deep = "a = " + String(repeating: opener, count: 100_000)
            let error = #expect(throws: ConfigError.self) { try TOMLParser.parse(deep) }
            #expect(error?.message.contains("nested more than 32 deep") == true)
        }
    }
}

@Suite struct ConfigurationTests {
    @Test func readsAFullConfig() throws {
        let configuration = try Configuration(
            toml: #"""
            socket = "/run/costd/costd.sock"
            state_dir = "/var/lib/costd"
            time_zone = "Europe/Paris"
            baseline_model = "gpt-4.1"

            [limits]
            max_frame_bytes = 1048576
            max_json_depth = 32

            [cache]
            max_bytes = 1000000
            default_ttl = 60

            [budget]
            daily = 25.50
            monthly = 500
            warning_fraction = 0.75
            hard_daily = true

            [routing]
            default_tier = "mid"
            prompt_token_threshold = 2000
            budget_downgrade_fraction = 0.95
            [[routing.tiers]]
            name = "cheap"
            model = "gpt-4.1-nano"
            [[routing.tiers]]
            name = "mid"
            model = "gpt-4.1-mini"
            [[routing.tiers]]
            name = "top"
            model = "gpt-4.1"
            [routing.tasks]
            classification = "cheap"
            [routing.max_tokens]
            classification = 8
            default = 700

            [prices]
            file = "/etc/costd/prices.json"
            [prices."my-model"]
            input = 0.3
            output = 1.2
            """#
        )
        #expect(configuration.socketPath == "/run/costd/costd.sock")
        #expect(configuration.timeZone == "Europe/Paris")
        #expect(configuration.limits.maxFrameBytes == 1_048_576)
        #expect(configuration.limits.json.maxDepth == 32)
        #expect(configuration.cache.defaultTTLSeconds == 60)
        #expect(configuration.budget.daily == Money(usd: "25.50"))
        #expect(configuration.budget.warningFractionPPM == 750_000)
        #expect(configuration.budget.hardDaily)
        #expect(configuration.routing.tiers.map(\.model) == ["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"])
        #expect(configuration.routing.budgetDowngradeFractionPPM == 950_000)
        #expect(configuration.routing.taskMaxTokens["classification"] == 8)
        #expect(configuration.routing.defaultMaxTokens == 700)
        #expect(configuration.pricesFile == "/etc/costd/prices.json")
        #expect(configuration.prices.price(for: "my-model")?.outputPerMillion == Money(usd: "1.2"))
    }

    @Test func ledgerFsyncModeIsBatchedUnlessAlwaysIsAsked() throws {
        #expect(try Configuration(toml: "").ledger.fsync == .batched)
        #expect(try Configuration(toml: "[ledger]\nfsync = \"always\"").ledger.fsync == .always)
        #expect(try Configuration(toml: "[ledger]\nfsync = \"batched\"").ledger.fsync == .batched)
        let error = #expect(throws: ConfigError.self) { try Configuration(toml: "[ledger]\nfsync = \"everysec\"") }
        #expect(error?.message == "ledger.fsync must be \"always\" or \"batched\"")
    }

    @Test func spendMayHaveARedisOfItsOwn() throws {
        let shared = try #require(try Configuration(toml: "[redis]\nurl = \"unix:///run/cache.sock\"").redis)
        #expect(shared.spendEndpoint == nil)
        #expect(shared.forSpend.endpoint == shared.endpoint)
        let split = try #require(
            try Configuration(toml: "[redis]\nurl = \"unix:///run/cache.sock\"\nspend_url = \"unix:///run/spend.sock?db=2\"\nkey_prefix = \"x:\"").redis)
        #expect(split.spendEndpoint == (try RedisEndpoint(url: "unix:///run/spend.sock?db=2")))
        #expect(split.forSpend.endpoint == split.spendEndpoint)
        #expect(split.forSpend.keyPrefix == "x:", "one key layout on both")
        #expect(throws: ConfigError.self) { try Configuration(toml: "[redis]\nurl = \"unix:///run/cache.sock\"\nspend_url = \"http://x\"") }
    }

    @Test func aConnectionsShareOfTheLoopIsConfigurable() throws {
        #expect(try Configuration(toml: "").limits.connectionCPUSharePPM == 500_000)
        let limits = try Configuration(toml: "[limits]\nconnection_cpu_share = 0.25\nconnection_cpu_burst_ms = 5").limits
        #expect(limits.connectionCPUSharePPM == 250_000)
        #expect(limits.connectionCPUBurstMillis == 5)
        #expect(throws: ConfigError.self) { try Configuration(toml: "[limits]\nconnection_cpu_share = 0") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[limits]\nconnection_cpu_share = 1.5") }
    }

    @Test func eventLoopsDefaultToHalfTheCores() {
        #expect([1, 2, 3, 4, 8].map { Configuration.defaultEventLoops(cores: $0) } == [1, 1, 1, 2, 4])
    }

    @Test func unknownKeysAreErrors() {
        let error = #expect(throws: ConfigError.self) { try Configuration(toml: "[budget]\ndayly = 5") }
        #expect(error?.message == "unknown setting 'budget.dayly'")
    }

    @Test func badValuesAreErrors() throws {
        #expect(throws: ConfigError.self) { try Configuration(toml: "[budget]\ndaily = -1") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[budget]\nwarning_fraction = 2") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "time_zone = \"Nowhere/Land\"") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[routing.tasks]\nx = \"missing-tier\"") }
        let encoding = #expect(throws: ConfigError.self) {
            try Configuration(toml: "[prices.m]\ninput = 1\noutput = 2\nencoding = \"o200k\"")
        }
        #expect(encoding?.message.contains("unknown encoding 'o200k'") == true)
        #expect(try Configuration(toml: "[prices.m]\ninput = 1\noutput = 2\nencoding = \"cl100k_base\"").prices.price(for: "m")?.encoding == "cl100k_base")
    }

    @Test func theConfigFileIsSearchedWhenNoneIsGiven() {
        let both: Swift.Set = ["/x/costd/costd.toml", "/home/ann/.config/costd/costd.toml", "/etc/costd/costd.toml"]
        let exists = { (path: String) in both.contains(path) }
        #expect(DefaultPaths.configFile(environment: ["COSTD_CONFIG": "/c.toml", "XDG_CONFIG_HOME": "/x"], exists: exists) == "/c.toml")
        #expect(DefaultPaths.configFile(environment: ["XDG_CONFIG_HOME": "/x", "HOME": "/home/ann"], exists: exists) == "/x/costd/costd.toml")
        #expect(DefaultPaths.configFile(environment: ["HOME": "/home/ann"], exists: exists) == "/home/ann/.config/costd/costd.toml")
        #expect(DefaultPaths.configFile(environment: ["HOME": "/home/bob"], exists: exists) == "/etc/costd/costd.toml")
        #expect(DefaultPaths.configFile(environment: [:], exists: { _ in false }) == nil, "none: every setting has its default")
    }

    @Test func pathsDefaultFromTheEnvironment() {
        #expect(DefaultPaths.socket(environment: ["COSTD_SOCKET": "/a", "XDG_RUNTIME_DIR": "/r"]) == "/a")
        #expect(DefaultPaths.socket(environment: ["XDG_RUNTIME_DIR": "/r"]) == "/r/costd.sock")
        #expect(DefaultPaths.socket(environment: [:]) == "/run/costd/costd.sock")
        #expect(DefaultPaths.stateDirectory(environment: ["STATE_DIRECTORY": "/s:/t"]) == "/s")
        #expect(DefaultPaths.stateDirectory(environment: ["XDG_STATE_HOME": "/x"]) == "/x/costd")
        #expect(DefaultPaths.stateDirectory(environment: [:]) == "/var/lib/costd")
    }
}

@Suite struct SystemdUnitTests {
    @Test func findsTheInnermostUnit() {
        #expect(SystemdUnit.fromCgroup("0::/system.slice/backup.service\n") == "backup.service")
        #expect(SystemdUnit.fromCgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/notes.service") == "notes.service")
        #expect(SystemdUnit.fromCgroup("0::/user.slice/user-1000.slice/session-4.scope") == "session-4.scope")
        #expect(SystemdUnit.fromCgroup("12:name=systemd:/system.slice/cron.service\n0::/\n") == "cron.service")
        #expect(SystemdUnit.fromCgroup("1:name=systemd:/system.slice/cron.service\n") == "cron.service")
        #expect(SystemdUnit.fromCgroup("0::/") == nil)
        #expect(SystemdUnit.fromCgroup("") == nil)
    }
}
