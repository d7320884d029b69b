import CostdCore

/// Everything a reload can change, swapped as one immutable value: the configuration, the
/// price table built from it, and the router. A request reads one `Rules` and uses it
/// throughout, so it never sees half of an old config and half of a new one.
public final class Rules: Sendable {
    public let configuration: Configuration
    public let prices: PriceTable
    public let router: Router
    /// The encoding that sizes routing prompts: the default tier's model's.
    public let routingEncoding: String

    public var budget: BudgetSettings { configuration.budget }

    public init(configuration: Configuration, prices: PriceTable) {
        self.configuration = configuration
        self.prices = prices
        self.router = Router(rules: configuration.routing)
        let defaultModel = configuration.routing.tiers.first { $0.name == configuration.routing.defaultTier }?.model
        self.routingEncoding = defaultModel.flatMap { prices.price(for: $0)?.encoding } ?? EncodingSpec.o200kBase.name
    }

    /// Builds the rules of `configuration`: built-in prices, then the LiteLLM price file it
    /// names, then its own `[prices]` entries.
    public static func load(_ configuration: Configuration) throws -> Rules {
        var prices = PriceTable.builtIn
        if let path = configuration.pricesFile {
            guard let bytes = try FileIO.readAll(path) else {
                throw ConfigError("price file \(path) does not exist")
            }
            let document: JSONValue
            do {
                document = try JSONParser.parse(bytes, limits: .unlimited)
            } catch {
                throw ConfigError("price file \(path): \(error)")
            }
            do {
                prices = prices.merging(try PriceTable.fromLiteLLM(document))
            } catch {
                throw ConfigError("\(path): \(error.message)")
            }
        }
        prices = prices.merging(configuration.prices)
        for tier in configuration.routing.tiers where prices.price(for: tier.model) == nil {
            throw ConfigError("routing tier '\(tier.name)' uses model '\(tier.model)', which has no price")
        }
        return Rules(configuration: configuration, prices: prices)
    }
}
