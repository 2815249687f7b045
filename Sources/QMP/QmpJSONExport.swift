// JSONValue, JSONParser and JSONStreamSplitter live in the bottom module QmpJSON so that the
// svmm-migrate client can use them without Machine; QMP's files and tests keep seeing them here.
@_exported import QmpJSON
