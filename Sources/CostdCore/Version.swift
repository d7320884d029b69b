/// The version of costd, its client and its protocol documents: one number for all of them.
public enum CostdVersion {
    public static let current = "0.2.0"
}
