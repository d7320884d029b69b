/// The attributes of a call that scopes match against.
public struct SpendAttributes: Sendable, Equatable {
    public var user: String?
    public var feature: String?
    public var unixUser: String?
    public var unit: String?
    public var model: String?

    public init(user: String? = nil, feature: String? = nil, unixUser: String? = nil, unit: String? = nil, model: String? = nil) {
        self.user = user
        self.feature = feature
        self.unixUser = unixUser
        self.unit = unit
        self.model = model
    }

    public init(_ record: SpendRecord) {
        self.init(user: record.user, feature: record.feature, unixUser: record.unixUser, unit: record.unit, model: record.model)
    }

    public subscript(dimension: SpendScope.Dimension) -> String? {
        switch dimension {
        case .user: user
        case .feature: feature
        case .unixUser: unixUser
        case .unit: unit
        case .model: model
        }
    }
}
