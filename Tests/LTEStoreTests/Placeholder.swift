import XCTest

final class LTEStoreTestsPlaceholder: XCTestCase {}
